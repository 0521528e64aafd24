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
	vars := strings.NewReplacer("{{org_id}}", p.OrgID, "{{trust_domain}}", p.TrustDomain)
	for _, name := range req.dnsNames {
		if strings.Contains(name, "*") {
			return Inputf("csr requests the wildcard DNS SAN %q; wildcard names are never issued", name)
		}
		if !matchesAny(r.AllowedDNSSANs, func(pat string) bool { return matchDNS(vars.Replace(pat), name) }) {
			return Inputf("csr requests DNS SAN %q, which matches none of the role's allowed_dns_sans %q", name, r.AllowedDNSSANs)
		}
	}
	for _, ip := range req.ips {
		if !matchesAny(r.AllowedIPSANs, func(pat string) bool { return matchIP(pat, ip) }) {
			return Inputf("csr requests IP address SAN %s, which is in none of the role's allowed_ip_sans %q", ip, r.AllowedIPSANs)
		}
	}
	for _, email := range req.emails {
		if !matchesAny(r.AllowedEmailSANs, func(pat string) bool { return matchEmail(vars.Replace(pat), email) }) {
			return Inputf("csr requests email SAN %q, which matches none of the role's allowed_email_sans %q", email, r.AllowedEmailSANs)
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
		return Inputf("%q is not a DNS name pattern", p)
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return Inputf("%q has a single label; name a domain (e.g. *.agents.example.com)", p)
	}
	for _, l := range labels {
		if l == "*" {
			continue
		}
		if l == "" || len(l) > 63 || strings.Trim(strings.ToLower(l), "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return Inputf("%q: label %q is neither a DNS label nor *", p, l)
		}
	}
	if labels[len(labels)-1] == "*" {
		return Inputf("%q ends in *: the top-level labels must be literal", p)
	}
	return nil
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
	if !ok || local == "" || strings.Contains(domain, "@") || local != "*" && strings.ContainsAny(local, "* ") {
		return Inputf("%q is not an email pattern: use local@domain or *@domain", p)
	}
	return checkDNSPattern(domain)
}

func matchEmail(pattern, email string) bool {
	pLocal, pDomain, _ := strings.Cut(pattern, "@")
	i := strings.LastIndex(email, "@")
	if i <= 0 {
		return false
	}
	local, domain := email[:i], email[i+1:]
	return (pLocal == "*" || pLocal == local) && matchDNS(pDomain, domain)
}

func checkIPPattern(p string) error {
	if _, err := netip.ParsePrefix(p); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return nil
	}
	return Inputf("%q is neither a CIDR prefix nor an IP address", p)
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
