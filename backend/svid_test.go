package backend

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// checkSVIDs is the SPIFFE library's judgement of every leaf a unit test
// has this backend issue (requestErr runs it on each answer): a leaf that
// carries a SPIFFE ID must be an X.509-SVID that go-spiffe parses and
// verifies (x509svid.ParseAndVerify) against a bundle holding the top of
// the answer's ca_chain (the Org CA). CA certificates and leaves without a
// spiffe:// URI are not SVIDs and are skipped. (ParseAndVerify does not require keyUsage digitalSignature;
// x509svid.Parse does, which Mastio's own leaf profile, KU none, fails:
// TestSPIFFE_StrictSVIDs.)
func checkSVIDs(resp *logical.Response) error {
	if resp == nil || resp.IsError() || resp.Data == nil {
		return nil
	}
	chain, _ := resp.Data["ca_chain"].([]string)
	leaves := []string{}
	if c, ok := resp.Data["certificate"].(string); ok {
		leaves = append(leaves, c)
	}
	if batch, ok := resp.Data["certificates"].([]map[string]any); ok {
		for _, r := range batch {
			if c, ok := r["certificate"].(string); ok {
				leaves = append(leaves, c)
			}
		}
	}
	for _, leafPEM := range leaves {
		if err := checkSVID(leafPEM, chain); err != nil {
			return fmt.Errorf("an issued leaf is not a valid X.509-SVID by go-spiffe: %w", err)
		}
	}
	return nil
}

func checkSVID(leafPEM string, chainPEMs []string) error {
	certs, err := issuing.ParseCertificatesPEM("certificate", leafPEM+strings.Join(chainPEMs, ""))
	if err != nil {
		return err
	}
	leaf := certs[0]
	if leaf.IsCA || len(leaf.URIs) == 0 || leaf.URIs[0].Scheme != "spiffe" || len(chainPEMs) == 0 {
		return nil
	}
	if len(leaf.URIs) > 1 {
		return nil // a role with uri_san_count > 1 issues a certificate that is not an SVID
	}
	root := certs[len(certs)-1]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return err
	}
	raw := make([][]byte, 0, len(certs)-1)
	for _, c := range certs[:len(certs)-1] {
		if !c.Equal(root) {
			raw = append(raw, c.Raw)
		}
	}
	bundle := x509bundle.FromX509Authorities(id.TrustDomain(), []*x509.Certificate{root})
	if _, _, err := x509svid.ParseAndVerify(raw, bundle, x509svid.WithTime(leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore)/2))); err != nil {
		return err
	}
	return nil
}

// TestSPIFFE_StrictSVIDs has go-spiffe's x509svid.ParseRaw, which also
// checks the private key and keyUsage digitalSignature (X.509-SVID 4.3),
// judge Mastio's profiles: agent, principal and the Mastio leaf recipe
// with key_usage=DigitalSignature pass; the recipe as Mastio signs today
// (key usage none) is refused for exactly that reason.
func TestSPIFFE_StrictSVIDs(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	strict := mastioRecipes["mastio-leaf"]
	m.write(t, "roles/mastio-leaf", strict)
	withDS := map[string]any{}
	for k, v := range strict {
		withDS[k] = v
	}
	withDS["key_usage"] = "DigitalSignature"
	m.write(t, "roles/mastio-leaf-svid", withDS)

	parse := func(resp *logical.Response, key crypto.Signer) error {
		var raw []byte
		for _, p := range append([]string{resp.Data["certificate"].(string)}, resp.Data["ca_chain"].([]string)...) {
			raw = append(raw, testpki.ParseCertPEM(t, p).Raw...)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = x509svid.ParseRaw(raw, keyDER)
		return err
	}
	key := testpki.NewECKey(t, elliptic.P256())
	agent := m.write(t, "sign-csr", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: key, CN: "acme::agent-1", URIs: []string{"spiffe://cullis.local/acme/agent-1"}})})
	principal := m.write(t, "sign-csr/principal", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: key, URIs: []string{"spiffe://cullis.local/acme/user/alice"}})})
	for name, resp := range map[string]*logical.Response{"agent": agent, "principal": principal} {
		if err := parse(resp, key); err != nil {
			t.Errorf("%s: x509svid.ParseRaw: %v", name, err)
		}
		if eku := testpki.ParseCertPEM(t, resp.Data["certificate"].(string)).ExtKeyUsage; len(eku) != 1 || eku[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("%s: EKU %v, want clientAuth only (Mastio's profile)", name, eku)
		}
	}
	pub := testpki.PublicKeyPEM(t, key)
	leaf := m.write(t, "sign-public-key/mastio-leaf-svid", map[string]any{"public_key": pub, "spiffe_id": "spiffe://cullis.local/proxy/acme"})
	if err := parse(leaf, key); err != nil {
		t.Errorf("mastio-leaf with digitalSignature: %v", err)
	}
	asToday := m.write(t, "sign-public-key/mastio-leaf", map[string]any{"public_key": pub, "spiffe_id": "spiffe://cullis.local/proxy/acme"})
	if err := parse(asToday, key); err == nil || !strings.Contains(err.Error(), "digitalSignature") {
		t.Errorf("mastio-leaf without key usage: ParseRaw says %v, want the digitalSignature refusal", err)
	}
}
