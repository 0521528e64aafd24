package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// makeCert issues a certificate from tmpl, signed by parent (self-signed
// when parent is nil).
func makeCert(t *testing.T, tmpl *x509.Certificate, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func caTemplate(cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// pathLen0 limits a CA template to path length 0, as intermediates are.
func pathLen0(tmpl *x509.Certificate) *x509.Certificate {
	tmpl.MaxPathLenZero = true
	return tmpl
}

func newVerification(now time.Time) (*verification, *bytes.Buffer) {
	var out bytes.Buffer
	return &verification{out: &out, stderr: &out, warnDays: 30, now: now}, &out
}

func TestVerifyChecks(t *testing.T) {
	now := time.Now()
	year := 365 * 24 * time.Hour
	org := makeCert(t, caTemplate("acme CA", now.Add(-time.Hour), now.Add(10*year)), nil)
	inter := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(5*year))), org)
	other := makeCert(t, caTemplate("other CA", now.Add(-time.Hour), now.Add(10*year)), nil)

	leafTmpl := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	}
	leafByInter := makeCert(t, leafTmpl(), inter)
	leafByOrg := makeCert(t, leafTmpl(), org)

	notCA := caTemplate("not a CA", now.Add(-time.Hour), now.Add(year))
	notCA.IsCA, notCA.KeyUsage = false, x509.KeyUsageDigitalSignature

	for _, tc := range []struct {
		name      string
		check     func(v *verification)
		code      int
		wantLines []string
	}{
		{"healthy org CA", func(v *verification) { v.checkOrgCA(org.cert) }, verifyOK,
			[]string{"OK    Org CA: CN=acme CA, EC P-256, self-signed", "days left)"}},
		{"org CA not self-signed", func(v *verification) { v.checkOrgCA(inter.cert) }, verifyOK,
			[]string{"issued by CN=acme CA (not self-signed"}},
		{"expired org CA", func(v *verification) {
			v.checkOrgCA(makeCert(t, caTemplate("old", now.Add(-2*year), now.Add(-time.Hour)), nil).cert)
		}, verifyCritical, []string{"FAIL  Org CA: expired on "}},
		{"org CA not yet valid", func(v *verification) {
			v.checkOrgCA(makeCert(t, caTemplate("future", now.Add(time.Hour), now.Add(year)), nil).cert)
		}, verifyCritical, []string{"FAIL  Org CA: not valid before "}},
		{"org CA not a CA", func(v *verification) { v.checkOrgCA(makeCert(t, notCA, nil).cert) }, verifyCritical,
			[]string{"FAIL  Org CA: the certificate is not a CA"}},
		{"org CA expiring", func(v *verification) {
			v.checkOrgCA(makeCert(t, caTemplate("soon", now.Add(-year), now.Add(10*24*time.Hour)), nil).cert)
		}, verifyWarning, []string{"WARN  Org CA: expires in 9 days", "within --warn-days 30: plan its replacement"}},
		{"healthy intermediate", func(v *verification) {
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: inter.cert}}, org.cert, "m")
		}, verifyOK, []string{"issued by the Org CA, path length 0", "OK    Mastio Intermediate CA: valid until"}},
		{"intermediate without a path length limit", func(v *verification) {
			open := makeCert(t, caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(year)), org)
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: open.cert}}, org.cert, "m")
		}, verifyOK, []string{"issued by the Org CA, path length not limited to 0"}},
		{"intermediate from another CA", func(v *verification) {
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: inter.cert}}, other.cert, "m")
		}, verifyCritical, []string{"FAIL  Mastio Intermediate CA: not issued by the Org CA"}},
		{"intermediate outlives the org CA", func(v *verification) {
			short := makeCert(t, caTemplate("acme CA", now.Add(-time.Hour), now.Add(2*year)), nil)
			long := makeCert(t, caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(3*year)), short)
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: long.cert}}, short.cert, "m")
		}, verifyWarning, []string{"WARN  Mastio Intermediate CA: valid until", "after the Org CA"}},
		{"intermediate expiring", func(v *verification) {
			soon := makeCert(t, caTemplate("acme Mastio CA", now.Add(-year), now.Add(5*24*time.Hour)), org)
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: soon.cert}, Previous: inter.cert, PreviousGraceUntil: now.Add(24 * time.Hour)}, org.cert, "mastio-ca")
		}, verifyWarning, []string{"rotate it: vault write -f mastio-ca/intermediate/rotate",
			"OK    Rotated-out intermediate (sha256 " + sha256Hex(inter.cert.Raw) + "): issued by the Org CA, still accepted until"}},
		{"rotated-out intermediate from another CA", func(v *verification) {
			stray := makeCert(t, pathLen0(caTemplate("stray", now.Add(-time.Hour), now.Add(year))), other)
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: inter.cert}, Previous: stray.cert, PreviousGraceUntil: now.Add(24 * time.Hour)}, org.cert, "m")
		}, verifyCritical, []string{"FAIL  Rotated-out intermediate (sha256 ", "not issued by the Org CA"}},
		{"rotated-out intermediate expired", func(v *verification) {
			old := makeCert(t, pathLen0(caTemplate("old", now.Add(-year), now.Add(-time.Hour))), org)
			v.checkIntermediate(&client.Intermediate{CA: &client.CA{Certificate: inter.cert}, Previous: old.cert, PreviousGraceUntil: now.Add(24 * time.Hour)}, org.cert, "m")
		}, verifyWarning, []string{"WARN  Rotated-out intermediate (sha256 ", "expired on", "though still published until"}},
		{"chain through the intermediate", func(v *verification) { v.checkChain(leafByInter.cert, org.cert, inter.cert) }, verifyOK,
			[]string{"OK    Chain: the test certificate verifies as leaf → Mastio Intermediate CA → Org CA"}},
		{"chain to the org CA", func(v *verification) { v.checkChain(leafByOrg.cert, org.cert, nil) }, verifyOK,
			[]string{"OK    Chain: the test certificate verifies as leaf → Org CA"}},
		{"leaf skips the intermediate", func(v *verification) { v.checkChain(leafByOrg.cert, org.cert, inter.cert) }, verifyCritical,
			[]string{"FAIL  Chain: the test certificate verifies to the Org CA without the intermediate"}},
		{"leaf under another root", func(v *verification) { v.checkChain(leafByInter.cert, other.cert, nil) }, verifyCritical,
			[]string{"FAIL  Chain: the test certificate does not verify to the Org CA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, out := newVerification(now)
			tc.check(v)
			if code := v.exitCode(); code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, out)
			}
			for _, want := range tc.wantLines {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestVerifyUsage(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--warn-days", "-1"}, "must not be negative"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{nil, "set VAULT_ADDR and VAULT_TOKEN"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runVerify(t.Context(), tc.args, &stdout, &stderr); code != verifyUnknown {
			t.Errorf("%v: exit %d, want %d", tc.args, code, verifyUnknown)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, stderr.String())
		}
	}
}
