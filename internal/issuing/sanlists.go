package issuing

import (
	"net"
	"net/netip"
	"strings"
)

// SAN allow-lists. A role that allows DNS, IP or email SANs names the
// values it allows; a CSR's name must match at least one entry.
//
//   allowed_dns_sans    DNS name patterns, compared label by label and
//                       without regard to case. A label "*" matches
//                       exactly one label of the requested name (so
//                       "*.agents.acme.example" allows
//                       "a1.agents.acme.example" but neither
//                       "agents.acme.example" nor "x.a1.agents.acme.example");
//                       any other label matches itself. {{org_id}} and
//                       {{trust_domain}} are replaced first.
//   allowed_email_sans  local@domain: local is "*" (any local part) or a
//                       literal; domain as in allowed_dns_sans.
//   allowed_ip_sans     CIDR prefixes (10.0.0.0/8, 2001:db8::/32) or single
//                       addresses.
//
// A requested DNS name that is itself a wildcard ("*.acme.example") is
// never issued.

// maxSANListEntries bounds each allow-list, so that matching a CSR costs
// bounded time whatever the role.
const maxSANListEntries = 64

// checkSANLists validates the allow-lists when a role is written.
func (r *Role) checkSANLists() error {
	lists := []struct {
		field, flag string
		on          bool
		entries     []string
		check       func(string) error
	}{
		{"allowed_dns_sans", "allow_dns_sans", r.AllowDNSSANs, r.AllowedDNSSANs, checkDNSPattern},
		{"allowed_ip_sans", "allow_ip_sans", r.AllowIPSANs, r.AllowedIPSANs, checkIPPattern},
		{"allowed_email_sans", "allow_email_sans", r.AllowEmailSANs, r.AllowedEmailSANs, checkEmailPattern},
	}
	for _, l := range lists {
		if l.on && len(l.entries) == 0 {
			return Inputf("%s=true needs %s, the names it allows (see `vault path-help` of roles/<name>); a role may not issue any name at all", l.flag, l.field)
		}
		if len(l.entries) > maxSANListEntries {
			return Inputf("%s has %d entries; at most %d are accepted", l.field, len(l.entries), maxSANListEntries)
		}
		for _, e := range l.entries {
			if err := l.check(e); err != nil {
				return Inputf("%s: %v", l.field, err)
			}
		}
	}
	return nil
}

// checkSANs refuses a requested name that no allow-list entry matches.
func (r *Role) checkSANs(req *LeafRequest, p IssueParams) error {
	if len(req.dnsNames)+len(req.ips)+len(req.emails) == 0 {
		return nil // the common case: an agent CSR with one URI SAN
	}
	vars := strings.NewReplacer("{{org_id}}", p.OrgID, "{{trust_domain}}", p.TrustDomain)
	for _, l := range []struct {
		field     string
		requested int
		entries   []string
	}{{"allowed_dns_sans", len(req.dnsNames), r.AllowedDNSSANs}, {"allowed_ip_sans", len(req.ips), r.AllowedIPSANs}, {"allowed_email_sans", len(req.emails), r.AllowedEmailSANs}} {
		if l.requested > 0 && len(l.entries) == 0 {
			return Statef("the role allows these SANs but names none in %s (it was written before allow-lists were required): rewrite it with %s", l.field, l.field)
		}
	}
	for _, name := range req.dnsNames {
		if strings.Contains(name, "*") {
			return Inputf("csr requests the wildcard DNS SAN %s; wildcard names are never issued", Quote(name))
		}
		if !isHostname(name) {
			return Inputf("csr requests the DNS SAN %s, which is not a host name (labels of letters, digits and hyphens, 1-63 characters each)", Quote(name))
		}
		if !matchesAny(r.AllowedDNSSANs, func(pat string) bool { return matchDNS(vars.Replace(pat), name) }) {
			return Inputf("csr requests DNS SAN %s, which matches none of the role's allowed_dns_sans %q", Quote(name), r.AllowedDNSSANs)
		}
	}
	for _, ip := range req.ips {
		if !matchesAny(r.AllowedIPSANs, func(pat string) bool { return matchIP(pat, ip) }) {
			return Inputf("csr requests IP address SAN %s, which is in none of the role's allowed_ip_sans %q", ip, r.AllowedIPSANs)
		}
	}
	for _, email := range req.emails {
		if !matchesAny(r.AllowedEmailSANs, func(pat string) bool { return matchEmail(vars.Replace(pat), email) }) {
			return Inputf("csr requests email SAN %s, which matches none of the role's allowed_email_sans %q", Quote(email), r.AllowedEmailSANs)
		}
	}
	return nil
}

func matchesAny(patterns []string, match func(string) bool) bool {
	for _, p := range patterns {
		if match(p) {
			return true
		}
	}
	return false
}

func checkDNSPattern(p string) error {
	s := strings.NewReplacer("{{org_id}}", "org", "{{trust_domain}}", "example.org").Replace(p)
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return Inputf("%s is not a DNS name pattern", Quote(p))
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l != "*" && !isLabel(l) {
			return Inputf("%s: label %s is neither a DNS label nor *", Quote(p), Quote(l))
		}
	}
	if n := len(labels); n < 2 || labels[n-1] == "*" || labels[n-2] == "*" {
		return Inputf("%s must end in at least two literal labels (a domain the org holds, e.g. *.agents.example.com)", Quote(p))
	}
	return nil
}

// isLabel reports whether l is a host name label: 1-63 letters, digits
// and hyphens, not starting or ending with a hyphen.
func isLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isHostname reports whether name is a host name of at most 253 characters.
func isHostname(name string) bool {
	if len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if !isLabel(l) {
			return false
		}
	}
	return true
}

func matchDNS(pattern, name string) bool {
	pl, nl := strings.Split(strings.ToLower(pattern), "."), strings.Split(strings.ToLower(name), ".")
	if len(pl) != len(nl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != nl[i] || nl[i] == "" {
			return false
		}
	}
	return true
}

func checkEmailPattern(p string) error {
	local, domain, ok := strings.Cut(p, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || local != "*" && strings.ContainsAny(local, "* \"\\") {
		return Inputf("%s is not an email pattern: use local@domain or *@domain", Quote(p))
	}
	return checkDNSPattern(domain)
}

// matchEmail matches an address with exactly one "@" and no quoting
// against a pattern.
func matchEmail(pattern, email string) bool {
	pLocal, pDomain, _ := strings.Cut(pattern, "@")
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || strings.ContainsAny(local, " \"\\") || !isHostname(domain) {
		return false
	}
	return (pLocal == "*" || pLocal == local) && matchDNS(pDomain, domain)
}

func checkIPPattern(p string) error {
	if _, err := netip.ParsePrefix(p); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return nil
	}
	return Inputf("%s is neither a CIDR prefix nor an IP address", Quote(p))
}

func matchIP(pattern string, ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	if pfx, err := netip.ParsePrefix(pattern); err == nil {
		return pfx.Masked().Contains(addr)
	}
	a, err := netip.ParseAddr(pattern)
	return err == nil && a.Unmap() == addr
}
