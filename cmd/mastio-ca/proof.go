package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// proveKey proves that the plugin holds the private key of want, the
// certificate of its CA issuer ("org-ca" or "intermediate-ca"), without
// reading any key: the plugin signs a throw-away CSR and the certificate
// must verify under want. The CA is chosen through a temporary role
// pinned to it (<purpose>-<random>, one-minute TTL, a URI under
// /<purpose>/), deleted afterwards even on failure; a role is the only way
// to choose the signing CA, as sign-csr takes no issuer override. It
// returns the signed certificate.
func proveKey(ctx context.Context, c *client.Client, issuer, purpose string, want *x509.Certificate, stderr io.Writer) (*client.SignedCertificate, error) {
	cfg, err := c.Config(ctx)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	roleName := purpose + "-" + hex.EncodeToString(nonce)
	count := 1
	role := client.Role{
		Issuer:              issuer,
		URISANPattern:       "spiffe://{{trust_domain}}/{{org_id}}/" + purpose + "/*",
		URISANCount:         &count,
		SubjectCommonName:   client.String(""),
		SubjectOrganization: client.String(""),
		TTL:                 time.Minute,
		MaxTTL:              time.Minute,
	}
	if err := c.WriteRole(ctx, roleName, role); err != nil {
		return nil, fmt.Errorf("creating the temporary role %s: %w", roleName, err)
	}
	defer func() {
		if err := c.DeleteRole(context.WithoutCancel(ctx), roleName); err != nil {
			fmt.Fprintf(stderr, "mastio-ca: could not delete the temporary role %s: %v\n", roleName, err)
		}
	}()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := &url.URL{Scheme: "spiffe", Host: cfg.TrustDomain, Path: "/" + cfg.OrgID + "/" + purpose + "/" + hex.EncodeToString(nonce)}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{}, URIs: []*url.URL{id}}, key)
	if err != nil {
		return nil, err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	signed, err := c.SignCSR(ctx, csrPEM, client.SignOptions{Role: roleName, TTL: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("signing the throw-away CSR: %w", err)
	}
	if err := signed.Certificate.CheckSignatureFrom(want); err != nil {
		return nil, &mismatchError{fmt.Errorf("the plugin's signature does not verify under the expected certificate (sha256 %s): %w", sha256Hex(want.Raw), err)}
	}
	if got, fp := sha256Hex(signed.IssuingCA.Raw), sha256Hex(want.Raw); got != fp {
		return nil, &mismatchError{fmt.Errorf("the plugin signed as sha256 %s, expected %s", got, fp)}
	}
	return signed, nil
}

// mismatchError is a proof that ran and failed: the plugin signed, but not
// with the key of the expected certificate.
type mismatchError struct{ error }

func (e *mismatchError) Unwrap() error { return e.error }
