package issuing

import (
	"net"
	"strings"
	"testing"
)

func TestSANLists_Match(t *testing.T) {
	dns := []struct {
		pattern, name string
		want          bool
	}{
		{"*.agents.acme.example", "a1.agents.acme.example", true},
		{"*.agents.acme.example", "A1.Agents.ACME.example", true},
		{"*.agents.acme.example", "agents.acme.example", false},
		{"*.agents.acme.example", "x.a1.agents.acme.example", false},
		{"*.agents.acme.example", "a1.agents.acme.example.evil", false},
		{"api.acme.example", "api.acme.example", true},
		{"api.acme.example", "www.acme.example", false},
	}
	for _, tc := range dns {
		if got := matchDNS(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchDNS(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	for _, name := range []string{"a b.agents.acme.example", "a/b.agents.acme.example", "a\x00.agents.acme.example", "-a.acme.example", "a..acme.example", strings.Repeat("a", 64) + ".acme.example", "a_b.acme.example"} {
		if isHostname(name) {
			t.Errorf("isHostname(%q) = true", name)
		}
	}
	email := []struct {
		pattern, addr string
		want          bool
	}{
		{"*@acme.example", "alice@acme.example", true},
		{"alice@acme.example", "alice@acme.example", true},
		{"alice@acme.example", "bob@acme.example", false},
		{"*@acme.example", "evil@other.com@acme.example", false},
		{"*@acme.example", `"a@b"@acme.example`, false},
		{"*@*.acme.example", "a@x.acme.example", true},
	}
	for _, tc := range email {
		if got := matchEmail(tc.pattern, tc.addr); got != tc.want {
			t.Errorf("matchEmail(%q, %q) = %v, want %v", tc.pattern, tc.addr, got, tc.want)
		}
	}
	ip := []struct {
		pattern, addr string
		want          bool
	}{
		{"10.0.0.0/8", "10.255.0.1", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"10.0.0.0/8", "::ffff:10.0.0.1", true},
		{"2001:db8::/32", "2001:db8::1", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.8", false},
	}
	for _, tc := range ip {
		if got := matchIP(tc.pattern, net.ParseIP(tc.addr)); got != tc.want {
			t.Errorf("matchIP(%q, %s) = %v, want %v", tc.pattern, tc.addr, got, tc.want)
		}
	}
}

func TestSANLists_Validate(t *testing.T) {
	for _, p := range []string{"*.com", "*.*.com", "acme.*", "*", "a..b.com", "a b.example.com", "-x.example.com"} {
		if checkDNSPattern(p) == nil {
			t.Errorf("checkDNSPattern(%q) accepted", p)
		}
	}
	for _, p := range []string{"*.agents.acme.example", "api.acme.example", "*.agents.{{org_id}}.example", "*.*.acme.example"} {
		if err := checkDNSPattern(p); err != nil {
			t.Errorf("checkDNSPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"acme.example", "@acme.example", "a*b@acme.example", "*@*.com"} {
		if checkEmailPattern(p) == nil {
			t.Errorf("checkEmailPattern(%q) accepted", p)
		}
	}
	for _, p := range []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"} {
		if err := checkIPPattern(p); err != nil {
			t.Errorf("checkIPPattern(%q): %v", p, err)
		}
	}
	if checkIPPattern("10.0.0.0/33") == nil || checkIPPattern("example.com") == nil {
		t.Error("checkIPPattern accepted a non-address")
	}
	r := NewRole()
	r.URISANPattern, r.AllowDNSSANs = "spiffe://{{trust_domain}}/{{org_id}}/*", true
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "needs allowed_dns_sans") {
		t.Errorf("allow_dns_sans without a list: %v", err)
	}
	r.AllowedDNSSANs = make([]string, maxSANListEntries+1)
	for i := range r.AllowedDNSSANs {
		r.AllowedDNSSANs[i] = "x.acme.example"
	}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("a list of %d entries: %v", len(r.AllowedDNSSANs), err)
	}
}
