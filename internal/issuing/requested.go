package issuing

import (
	"net"
	"net/url"
	"slices"
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
	for _, name := range n.AltNames {
		if strings.Contains(name, "@") {
			if !slices.Contains(req.emails, name) {
				return Inputf("alt_names asks for email %s, which the csr does not carry: every name must be in the CSR", Quote(name))
			}
			continue
		}
		if !slices.ContainsFunc(req.dnsNames, func(d string) bool { return strings.EqualFold(d, name) }) {
			return Inputf("alt_names asks for DNS name %s, which the csr does not carry: every name must be in the CSR", Quote(name))
		}
	}
	for _, s := range n.IPSANs {
		ip := net.ParseIP(s)
		if ip == nil {
			return Inputf("ip_sans: %s is not an IP address", Quote(s))
		}
		if !slices.ContainsFunc(req.ips, ip.Equal) {
			return Inputf("ip_sans asks for %s, which the csr does not carry: every name must be in the CSR", ip)
		}
	}
	for _, s := range n.URISANs {
		if !slices.ContainsFunc(req.uris, func(u *url.URL) bool { return u.String() == s }) {
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
