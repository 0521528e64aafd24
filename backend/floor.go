package backend

import (
	"crypto/rand"
	"crypto/x509"
	"time"
)

// InProcessSigner is the signing path without Vault, for the benchmark's
// floor: a fresh in-memory CA of keyType/keyBits (as generate takes them)
// and the default agent role for org "acme". Each call of the returned
// function parses and checks one PEM CSR, applies the role and signs, as
// sign-csr does, and returns the DER certificate.
func InProcessSigner(keyType string, keyBits int) (func(csrPEM string) ([]byte, error), error) {
	key, err := generateKey(keyType, keyBits)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	der, err := newCACertificate(caParams{CommonName: "acme CA", Organization: "acme", NotAfter: now.Add(defaultCATTL), PathLen: 1, Now: now}, key, nil)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	r := defaultRoles()[roleAgent]
	pattern, err := compileURIPattern(r.URISANPattern, defaultTrustDomain, "acme")
	if err != nil {
		return nil, err
	}
	return func(csrPEM string) ([]byte, error) {
		req, err := parseCSR(csrPEM)
		if err != nil {
			return nil, err
		}
		tmpl, _, err := r.leafTemplate(req, issueParams{TrustDomain: defaultTrustDomain, OrgID: "acme", Now: time.Now(), Issuer: ca, TruncateLeaf: true, Pattern: pattern})
		if err != nil {
			return nil, err
		}
		return x509.CreateCertificate(rand.Reader, tmpl, ca, req.csr.PublicKey, key)
	}, nil
}
