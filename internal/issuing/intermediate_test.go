package issuing

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// orgCAForTest is a generated Org CA (pathLen 1) ready to sign.
func orgCAForTest(t testing.TB) Parent {
	t.Helper()
	ca, err := GenerateOrgCA(OrgCARequest{OrgID: "acme", KeyType: KeyTypeEC, TTL: DefaultCATTL, PathLen: 1}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(ca.KeyPKCS8)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	return Parent{Cert: cert, Signer: key.(crypto.Signer)}
}

// signedPending makes a pending intermediate and has org sign it.
func signedPending(t testing.TB, org Parent) (*PendingIntermediate, string) {
	t.Helper()
	p, err := NewIntermediateCSR(NewIntermediateSpec(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(EncodeCSRPEM(p.CSRDER))
	if err != nil {
		t.Fatalf("the pending CSR does not parse: %v", err)
	}
	s, err := SignIntermediate(DefaultIntermediateProfile(), IntermediateRequest{CSR: csr, PathLen: -1}, org, nil, "acme", "cullis.local", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p, EncodeCertPEM(s.DER)
}

func TestValidateSignedIntermediate(t *testing.T) {
	org := orgCAForTest(t)
	p, certPEM := signedPending(t, org)
	orgPEM := EncodeCertPEM(org.Cert.Raw)
	si, err := ValidateSignedIntermediate(p.Public, certPEM, orgPEM, "cullis.local", time.Now())
	if err != nil || !si.OrgCA.Equal(org.Cert) || len(si.OrgCAChain) != 0 {
		t.Fatalf("a certificate for the pending key: %v", err)
	}
	// The same, with the issuer after the certificate, and with the root
	// answer's ca_chain (which repeats the certificate first).
	for _, chain := range []struct{ cert, chain string }{{certPEM + orgPEM, ""}, {certPEM, certPEM + orgPEM}} {
		if si, err := ValidateSignedIntermediate(p.Public, chain.cert, chain.chain, "cullis.local", time.Now()); err != nil || !si.OrgCA.Equal(org.Cert) {
			t.Errorf("issuers given another way: %v", err)
		}
	}
	if len(si.CA.ChainDER) != 1 {
		t.Fatalf("the chain was not set from the given Org CA")
	}
	// Another trust domain's intermediate is refused.
	if _, err := ValidateSignedIntermediate(p.Public, certPEM, orgPEM, "other.local", time.Now()); err == nil || !strings.Contains(err.Error(), "trust domain is other.local") {
		t.Errorf("another trust domain: %v", err)
	}
	other, _ := signedPending(t, org)
	for _, c := range []struct {
		key       crypto.PublicKey
		cert, ch  string
		want      string
		wantInput bool
	}{
		{other.Public, certPEM, "", "not for the pending key", true},
		{p.Public, "", "", "certificate is required", true},
		{p.Public, orgPEM, "", "not for the pending key", true},
		{p.Public, certPEM + orgPEM, orgPEM, "not both", true},
		{p.Public, certPEM, EncodeCertPEM(testpki.MakeCert(t, testpki.CACert{Key: testpki.NewECKey(t, elliptic.P256()), IsCA: true, KeyUsage: x509.KeyUsageCertSign}).Raw), "did not sign", true},
	} {
		_, err := ValidateSignedIntermediate(c.key, c.cert, c.ch, "cullis.local", time.Now())
		if err == nil || !strings.Contains(err.Error(), c.want) || IsInput(err) != c.wantInput {
			t.Errorf("want a refusal with %q, got %v", c.want, err)
		}
	}
	// Expired by now.
	if _, err := ValidateSignedIntermediate(p.Public, certPEM, "", "cullis.local", time.Now().Add(2*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired certificate: %v", err)
	}
}

func TestRequire_EveryNameMustBeInTheCSR(t *testing.T) {
	csr, err := ParseCSR(testpki.MakeCSR(t, testpki.CSR{CN: "web", DNS: []string{"Web.Example"}, Emails: []string{"a@example.org"}, URIs: []string{"spiffe://td/x"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.Require(RequestedNames{CommonName: "web", AltNames: []string{"web.example", "a@example.org"}, URISANs: []string{"spiffe://td/x"}}); err != nil || csr.requiredCN != "web" {
		t.Fatalf("names all in the CSR: %v", err)
	}
	for _, n := range []RequestedNames{
		{AltNames: []string{"other.example"}},
		{AltNames: []string{"b@example.org"}},
		{IPSANs: []string{"10.0.0.1"}},
		{IPSANs: []string{"not-an-ip"}},
		{URISANs: []string{"spiffe://td/y"}},
		{CommonName: "other"},
		{OtherSANs: []string{"1.2.3;UTF8:x"}},
	} {
		if err := csr.Require(n); err == nil || !IsInput(err) {
			t.Errorf("%+v: %v, want a 400", n, err)
		}
	}
}

func FuzzValidateSignedIntermediate(f *testing.F) {
	org := orgCAForTest(f)
	p, certPEM := signedPending(f, org)
	f.Add(certPEM, EncodeCertPEM(org.Cert.Raw))
	f.Add(certPEM, "")
	f.Add("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "")
	f.Fuzz(func(t *testing.T, cert, chain string) {
		si, err := ValidateSignedIntermediate(p.Public, cert, chain, "cullis.local", time.Now())
		if err != nil {
			if !IsInput(err) {
				t.Fatalf("a non-input error: %v", err)
			}
			return
		}
		key, _ := x509.ParsePKCS8PrivateKey(p.KeyPKCS8)
		if c := si.CA.Cert; !PublicKeysEqual(key.(crypto.Signer).Public(), c.PublicKey) || !c.IsCA || c.MaxPathLen != 0 || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Fatalf("accepted a certificate that is not a pathLen-0 CA for the pending key")
		}
		if si.OrgCA != nil && si.CA.Cert.CheckSignatureFrom(si.OrgCA) != nil {
			t.Fatalf("accepted an Org CA that did not sign the certificate")
		}
	})
}
