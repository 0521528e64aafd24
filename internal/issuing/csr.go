package issuing

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
)

// Extension OIDs that a CSR may request and that ParseCSR inspects.
var (
	OIDExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	OIDExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	OIDExtExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	OIDExtSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// GeneralName tags (RFC 5280 4.2.1.6) ParseCSR understands.
const (
	SANTagEmail = 1
	SANTagDNS   = 2
	SANTagURI   = 6
	SANTagIP    = 7
)

// LeafRequest is what a CSR asks for, parsed from its requested extensions.
// The signer never copies extensions from the CSR; this is only checked.
type LeafRequest struct {
	pub         crypto.PublicKey
	wantsCA     bool
	keyUsage    x509.KeyUsage // 0 when not requested
	extKeyUsage []asn1.ObjectIdentifier
	uris        []*url.URL
	dnsNames    []string
	ips         []net.IP
	emails      []string
	commonName  string // the CSR subject's; only a request's own check reads it
	// requiredCN, when set, is a common name the request asked for beside
	// the CSR (sign/<role>): the role must put exactly it in the subject.
	requiredCN string
}

// MaxCSRBytes bounds a PEM CSR. An agent CSR is under 1 KiB and RSA-8192
// with a few SANs stays under 4 KiB; more is padding or an attack.
const MaxCSRBytes = 64 << 10

// ParseCSR reads exactly one PEM CSR, checks its key type and
// self-signature and parses the extensions it requests. Every error is a
// KindInput error.
func ParseCSR(text string) (*LeafRequest, error) {
	if len(text) > MaxCSRBytes {
		return nil, Inputf("csr is %d bytes; at most %d are accepted", len(text), MaxCSRBytes)
	}
	rest := []byte(strings.TrimSpace(text))
	if len(rest) == 0 {
		return nil, Inputf("csr is required: a PEM -----BEGIN CERTIFICATE REQUEST----- block")
	}
	block, rest := pem.Decode(rest)
	if block == nil {
		return nil, Inputf("csr is not PEM: expected a -----BEGIN CERTIFICATE REQUEST----- block")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, Inputf("csr block has type %q; expected CERTIFICATE REQUEST", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, Inputf("csr has data after the CERTIFICATE REQUEST block; send exactly one CSR")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, Inputf("csr could not be parsed: %v", err)
	}
	// The key type first: Go cannot check a signature made with a key it
	// does not support (RSA-PSS, DSA), and "does not verify" would mislead.
	if _, _, err := KeyInfo(csr.PublicKey); err != nil {
		alg := csr.PublicKeyAlgorithm.String()
		if csr.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
			alg = "(an algorithm Go does not know, such as RSA-PSS)"
		}
		return nil, Inputf("csr key type %s is not supported; use EC (P-256, P-384, P-521), RSA or Ed25519", alg)
	}
	// Then the bounds every key must keep, whatever the role says, before
	// the signature check, whose cost grows with the modulus and exponent:
	// a 192,000-bit modulus with e = 2^31-1 fits under MaxCSRBytes and
	// costs seconds of CPU to verify. The role's own limits come later.
	if err := checkKeyBounds("csr", csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, Inputf("csr signature does not verify: the CSR was altered or not signed by the key it carries")
	}
	req := &LeafRequest{pub: csr.PublicKey, uris: csr.URIs, dnsNames: csr.DNSNames, ips: csr.IPAddresses, emails: csr.EmailAddresses, commonName: csr.Subject.CommonName}
	for _, ext := range csr.Extensions {
		switch {
		case ext.Id.Equal(OIDExtBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if rest, err := asn1.Unmarshal(ext.Value, &bc); err != nil || len(rest) > 0 {
				return nil, Inputf("csr requests a malformed basicConstraints extension")
			}
			req.wantsCA = req.wantsCA || bc.IsCA
		case ext.Id.Equal(OIDExtKeyUsage):
			var bits asn1.BitString
			if rest, err := asn1.Unmarshal(ext.Value, &bits); err != nil || len(rest) > 0 {
				return nil, Inputf("csr requests a malformed keyUsage extension")
			}
			for i := 0; i < 9; i++ {
				if bits.At(i) != 0 {
					req.keyUsage |= 1 << uint(i)
				}
			}
		case ext.Id.Equal(OIDExtExtKeyUsage):
			var oids []asn1.ObjectIdentifier
			if rest, err := asn1.Unmarshal(ext.Value, &oids); err != nil || len(rest) > 0 {
				return nil, Inputf("csr requests a malformed extendedKeyUsage extension")
			}
			req.extKeyUsage = append(req.extKeyUsage, oids...)
		case ext.Id.Equal(OIDExtSubjectAltName):
			if err := checkSANForms(ext.Value); err != nil {
				return nil, err
			}
		}
	}
	return req, nil
}

// checkKeyBounds refuses, cheaply, a public key whose signature checks
// could cost more than any key this engine accepts: RSA above MaxRSABits
// or with an exponent other than 65537. (Go parses EC keys on the NIST
// curves only, each cheap to verify on; the role judges the curve.)
// what names the key's holder in the message.
func checkKeyBounds(what string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits > MaxRSABits {
			return Inputf("%s RSA key of %d bits is larger than the %d-bit limit", what, bits, MaxRSABits)
		}
		if k.E != 65537 {
			return Inputf("%s RSA public exponent %d is not accepted; use 65537", what, k.E)
		}
	}
	return nil
}

// checkSANForms walks GeneralNames itself so that name forms Go's parser
// silently drops (otherName, directoryName, registeredID, ...) are refused.
// The values themselves come from Go's parse of the CSR.
func checkSANForms(der []byte) error {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
		return Inputf("csr requests a malformed subjectAltName extension")
	}
	rest := seq.Bytes
	for len(rest) > 0 {
		var name asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &name)
		if err != nil || name.Class != asn1.ClassContextSpecific {
			return Inputf("csr requests a malformed subjectAltName extension")
		}
		switch name.Tag {
		case SANTagURI, SANTagDNS, SANTagEmail, SANTagIP:
		default:
			return Inputf("csr requests a subjectAltName of type [%d]; only URI, DNS, IP and email names are understood", name.Tag)
		}
	}
	return nil
}

// ParsePublicKeyPEM reads one PEM "PUBLIC KEY" (SPKI) block, as Mastio's
// enrollment sends it, into the request a role checks. It carries no
// extensions, so it asks for nothing beyond the role.
func ParsePublicKeyPEM(text string) (crypto.PublicKey, error) {
	rest := []byte(strings.TrimSpace(text))
	if len(rest) == 0 {
		return nil, Inputf("public_key is required: a PEM -----BEGIN PUBLIC KEY----- block")
	}
	block, rest := pem.Decode(rest)
	if block == nil {
		return nil, Inputf("public_key is not PEM: expected a -----BEGIN PUBLIC KEY----- block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, Inputf("public_key block has type %q; expected PUBLIC KEY (SubjectPublicKeyInfo)", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, Inputf("public_key has data after the PUBLIC KEY block; send exactly one key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, Inputf("public_key could not be parsed: %v", err)
	}
	if _, _, err := KeyInfo(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// PublicKeyRequest is the request to sign a bare public key (no CSR) for
// the ID that name fills into the role's pattern, or for spiffeID.
func PublicKeyRequest(pub crypto.PublicKey, r *Role, pattern *URIPattern, name, spiffeID string) (*LeafRequest, error) {
	if r.URISANCount != 1 || pattern == nil {
		return nil, Inputf("sign-public-key needs a role that requires exactly one URI SAN; this one requires %d", r.URISANCount)
	}
	var u *url.URL
	var err error
	if name != "" {
		u, err = pattern.Expand(name)
	} else if u, err = url.Parse(spiffeID); err != nil {
		err = Inputf("spiffe_id %s is not a URI", Quote(spiffeID))
	}
	if err != nil {
		return nil, err
	}
	return &LeafRequest{pub: pub, uris: []*url.URL{u}}, nil
}
