package issuing

import (
	"net"
	"strings"
)

// RequestedNames are the names a request in Vault PKI's shape (sign/<role>,
// as cert-manager sends it) lists beside its CSR. They never add to the
// certificate: each must be a name the CSR carries, which the role then
// judges like any other.
type RequestedNames struct {
	CommonName string
	AltNames   []string // DNS names; an entry with @ is an email address
	IPSANs     []string
	URISANs    []string
	OtherSANs  []string
}

// Require checks that every name n lists is in the CSR, and has the role's
// check require n's common name in the certificate's subject. A refusal
// names the first name that is not.
func (req *LeafRequest) Require(n RequestedNames) error {
	if len(n.OtherSANs) > 0 {
		return Inputf("other_sans asks for %d otherName SANs; this engine issues none", len(n.OtherSANs))
	}
	// Sets of the CSR's names: each requested name costs one lookup, so the
	// cost stays linear in the request, whatever the lists' lengths.
	dns, emails, ips, uris := set(req.dnsNames, strings.ToLower), set(req.emails, nil), map[string]bool{}, map[string]bool{}
	for _, ip := range req.ips {
		ips[ip.String()] = true
	}
	for _, u := range req.uris {
		uris[u.String()] = true
	}
	for _, name := range n.AltNames {
		if strings.Contains(name, "@") {
			if !emails[name] {
				return Inputf("alt_names asks for email %s, which the csr does not carry: every name must be in the CSR", Quote(name))
			}
			continue
		}
		if !dns[strings.ToLower(name)] {
			return Inputf("alt_names asks for DNS name %s, which the csr does not carry: every name must be in the CSR", Quote(name))
		}
	}
	for _, s := range n.IPSANs {
		ip := net.ParseIP(s)
		if ip == nil {
			return Inputf("ip_sans: %s is not an IP address", Quote(s))
		}
		if !ips[ip.String()] {
			return Inputf("ip_sans asks for %s, which the csr does not carry: every name must be in the CSR", ip)
		}
	}
	for _, s := range n.URISANs {
		if !uris[s] {
			return Inputf("uri_sans asks for %s, which the csr does not carry: every name must be in the CSR", Quote(s))
		}
	}
	if n.CommonName != "" {
		if n.CommonName != req.commonName {
			return Inputf("common_name %s is not the csr's common name: every name must be in the CSR", Quote(n.CommonName))
		}
		req.requiredCN = n.CommonName
	}
	return nil
}

// set holds each of names, mapped by norm when it is set.
func set(names []string, norm func(string) string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		if norm != nil {
			n = norm(n)
		}
		m[n] = true
	}
	return m
}
