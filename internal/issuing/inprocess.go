package issuing

import (
	"crypto/x509"
	"time"
)

// InProcessSigner is the signing path without Vault, for the benchmark's
// floor: a fresh in-memory CA of keyType/keyBits (as generate takes them)
// and the default agent role for org "acme". Each call of the returned
// function parses and checks one PEM CSR, applies the role and signs, as
// sign-csr does, and returns the DER certificate.
func InProcessSigner(keyType string, keyBits int) (func(csrPEM string) ([]byte, error), error) {
	key, err := GenerateKey(keyType, keyBits)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	der, err := NewCACertificate(CAParams{CommonName: "acme CA", Organization: "acme", NotAfter: now.Add(DefaultCATTL), PathLen: 1, Now: now}, key, nil)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	r := DefaultRoles()[RoleAgent]
	pattern, err := CompileURIPattern(r.URISANPattern, DefaultTrustDomain, "acme")
	if err != nil {
		return nil, err
	}
	return func(csrPEM string) ([]byte, error) {
		req, err := ParseCSR(csrPEM)
		if err != nil {
			return nil, err
		}
		leaf, err := r.Sign(req, IssueParams{TrustDomain: DefaultTrustDomain, OrgID: "acme", Now: time.Now(), Issuer: ca, TruncateLeaf: true, Pattern: pattern}, key)
		if err != nil {
			return nil, err
		}
		return leaf.DER, nil
	}, nil
}
