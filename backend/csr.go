package backend

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
)

// Extension OIDs that a CSR may request and that we inspect.
var (
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidExtSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// GeneralName tags (RFC 5280 4.2.1.6) we understand.
const (
	sanTagEmail = 1
	sanTagDNS   = 2
	sanTagURI   = 6
	sanTagIP    = 7
)

// csrRequest is what a CSR asks for, parsed from its requested extensions.
// The signer never copies extensions from the CSR; this is only checked.
type csrRequest struct {
	csr         *x509.CertificateRequest
	wantsCA     bool
	keyUsage    x509.KeyUsage // 0 when not requested
	extKeyUsage []asn1.ObjectIdentifier
	uris        []*url.URL
	dnsNames    []string
	ips         []net.IP
	emails      []string
}

// maxCSRBytes bounds a PEM CSR. An agent CSR is under 1 KiB and RSA-8192
// with a few SANs stays under 4 KiB; more is padding or an attack.
const maxCSRBytes = 64 << 10

// parseCSR reads exactly one PEM CSR, checks its key type and
// self-signature and parses the extensions it requests. Every error is a
// 400-worthy inputError.
func parseCSR(text string) (*csrRequest, error) {
	if len(text) > maxCSRBytes {
		return nil, inputErrorf("csr is %d bytes; at most %d are accepted", len(text), maxCSRBytes)
	}
	rest := []byte(strings.TrimSpace(text))
	if len(rest) == 0 {
		return nil, inputErrorf("csr is required: a PEM -----BEGIN CERTIFICATE REQUEST----- block")
	}
	block, rest := pem.Decode(rest)
	if block == nil {
		return nil, inputErrorf("csr is not PEM: expected a -----BEGIN CERTIFICATE REQUEST----- block")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, inputErrorf("csr block has type %q; expected CERTIFICATE REQUEST", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, inputErrorf("csr has data after the CERTIFICATE REQUEST block; send exactly one CSR")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, inputErrorf("csr could not be parsed: %v", err)
	}
	// The key type first: Go cannot check a signature made with a key it
	// does not support (RSA-PSS, DSA), and "does not verify" would mislead.
	if _, _, err := keyInfo(csr.PublicKey); err != nil {
		alg := csr.PublicKeyAlgorithm.String()
		if csr.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
			alg = "(an algorithm Go does not know, such as RSA-PSS)"
		}
		return nil, inputErrorf("csr key type %s is not supported; use EC (P-256, P-384, P-521), RSA or Ed25519", alg)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, inputErrorf("csr signature does not verify: the CSR was altered or not signed by the key it carries")
	}
	req := &csrRequest{csr: csr, uris: csr.URIs, dnsNames: csr.DNSNames, ips: csr.IPAddresses, emails: csr.EmailAddresses}
	for _, ext := range csr.Extensions {
		switch {
		case ext.Id.Equal(oidExtBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if rest, err := asn1.Unmarshal(ext.Value, &bc); err != nil || len(rest) > 0 {
				return nil, inputErrorf("csr requests a malformed basicConstraints extension")
			}
			req.wantsCA = req.wantsCA || bc.IsCA
		case ext.Id.Equal(oidExtKeyUsage):
			var bits asn1.BitString
			if rest, err := asn1.Unmarshal(ext.Value, &bits); err != nil || len(rest) > 0 {
				return nil, inputErrorf("csr requests a malformed keyUsage extension")
			}
			for i := 0; i < 9; i++ {
				if bits.At(i) != 0 {
					req.keyUsage |= 1 << uint(i)
				}
			}
		case ext.Id.Equal(oidExtExtKeyUsage):
			var oids []asn1.ObjectIdentifier
			if rest, err := asn1.Unmarshal(ext.Value, &oids); err != nil || len(rest) > 0 {
				return nil, inputErrorf("csr requests a malformed extendedKeyUsage extension")
			}
			req.extKeyUsage = append(req.extKeyUsage, oids...)
		case ext.Id.Equal(oidExtSubjectAltName):
			if err := checkSANForms(ext.Value); err != nil {
				return nil, err
			}
		}
	}
	return req, nil
}

// checkSANForms walks GeneralNames itself so that name forms Go's parser
// silently drops (otherName, directoryName, registeredID, ...) are refused.
// The values themselves come from Go's parse of the CSR.
func checkSANForms(der []byte) error {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
		return inputErrorf("csr requests a malformed subjectAltName extension")
	}
	rest := seq.Bytes
	for len(rest) > 0 {
		var name asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &name)
		if err != nil || name.Class != asn1.ClassContextSpecific {
			return inputErrorf("csr requests a malformed subjectAltName extension")
		}
		switch name.Tag {
		case sanTagURI, sanTagDNS, sanTagEmail, sanTagIP:
		default:
			return inputErrorf("csr requests a subjectAltName of type [%d]; only URI, DNS, IP and email names are understood", name.Tag)
		}
	}
	return nil
}

// parsePublicKeyPEM reads one PEM "PUBLIC KEY" (SPKI) block, as Mastio's
// enrollment sends it, into the request a role checks. It carries no
// extensions, so it asks for nothing beyond the role.
func parsePublicKeyPEM(text string) (crypto.PublicKey, error) {
	rest := []byte(strings.TrimSpace(text))
	if len(rest) == 0 {
		return nil, inputErrorf("public_key is required: a PEM -----BEGIN PUBLIC KEY----- block")
	}
	block, rest := pem.Decode(rest)
	if block == nil {
		return nil, inputErrorf("public_key is not PEM: expected a -----BEGIN PUBLIC KEY----- block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, inputErrorf("public_key block has type %q; expected PUBLIC KEY (SubjectPublicKeyInfo)", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, inputErrorf("public_key has data after the PUBLIC KEY block; send exactly one key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, inputErrorf("public_key could not be parsed: %v", err)
	}
	if _, _, err := keyInfo(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
