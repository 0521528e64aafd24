package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
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

// makeCRL is ca's complete CRL for thisUpdate..nextUpdate, listing
// revoked made-up serials.
func makeCRL(t *testing.T, ca *testCA, thisUpdate, nextUpdate time.Time, revoked int) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(3), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for i := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(int64(100 + i)), RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func parseCRL(t *testing.T, der []byte) *x509.RevocationList {
	t.Helper()
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestVerifyCRLFreshness(t *testing.T) {
	now := time.Now()
	year := 365 * 24 * time.Hour
	org := makeCert(t, caTemplate("acme CA", now.Add(-time.Hour), now.Add(10*year)), nil)
	inter := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(5*year))), org)
	twin := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(5*year))), org) // same name, another key
	const name = "CRL of the Mastio Intermediate CA (crl)"
	for _, tc := range []struct {
		name      string
		list      *x509.RevocationList
		code      int
		wantLines []string
	}{
		{"fresh", parseCRL(t, makeCRL(t, inter, now.Add(-time.Hour), now.Add(71*time.Hour), 2)), verifyOK,
			[]string{"OK    " + name + ": number 3, 2 revoked certificates, signed by the Mastio Intermediate CA, next update ", "(in 71h0m, 98% of its 72h0m validity left)"}},
		{"just over a quarter left", parseCRL(t, makeCRL(t, inter, now.Add(-50*time.Hour), now.Add(22*time.Hour), 0)), verifyOK,
			[]string{"OK    " + name + ": number 3, 0 revoked certificates", "30% of its 72h0m validity left"}},
		{"in its last quarter", parseCRL(t, makeCRL(t, inter, now.Add(-60*time.Hour), now.Add(12*time.Hour), 1)), verifyWarning,
			[]string{"WARN  " + name + ": next update ", "in 12h0m: less than a quarter of its 72h0m validity left", "periodic rebuilds"}},
		{"past its nextUpdate", parseCRL(t, makeCRL(t, inter, now.Add(-73*time.Hour), now.Add(-time.Hour), 1)), verifyCritical,
			[]string{"FAIL  " + name + ": its nextUpdate ", "has passed (1h0m ago)", "refuse every certificate under the Mastio Intermediate CA"}},
		{"signed by another CA", parseCRL(t, makeCRL(t, org, now, now.Add(72*time.Hour), 0)), verifyCritical,
			[]string{"FAIL  " + name + ": issued by CN=acme CA, not by the Mastio Intermediate CA (CN=acme Mastio CA)"}},
		{"same name, another key", parseCRL(t, makeCRL(t, twin, now, now.Add(72*time.Hour), 0)), verifyCritical,
			[]string{"FAIL  " + name + ": does not verify under the Mastio Intermediate CA certificate (sha256 " + sha256Hex(inter.cert.Raw) + ")"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, out := newVerification(now)
			v.judgeCRL(name, "Mastio Intermediate CA", tc.list, inter.cert)
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

// verifyFake is a fake Vault for verify --prove=false: health, the CA
// certificates and the CRLs, each path answering what the test sets.
type verifyFake struct {
	t     *testing.T
	paths map[string]func(w http.ResponseWriter)
	asked []string
}

func (f *verifyFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	f.asked = append(f.asked, p)
	h, ok := f.paths[p]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
		return
	}
	h(w)
}

func jsonData(data map[string]any) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
}

func rawCRL(der []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(der)
	}
}

func vaultError(status int, msg string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
	}
}

// TestVerifyCRLs_FakeVault runs verify --prove=false against a fake Vault:
// which CRLs it reads on a root and an issuing mount, and what each answer
// does to the exit code.
func TestVerifyCRLs_FakeVault(t *testing.T) {
	now := time.Now()
	year := 365 * 24 * time.Hour
	org := makeCert(t, caTemplate("acme CA", now.Add(-time.Hour), now.Add(10*year)), nil)
	inter := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(5*year))), org)
	prev := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-year), now.Add(4*year))), org)
	prevID := hex.EncodeToString(prev.cert.SubjectKeyId)
	fresh := func(ca *testCA) func(http.ResponseWriter) {
		return rawCRL(makeCRL(t, ca, now.Add(-time.Hour), now.Add(71*time.Hour), 1))
	}
	pemOf := func(c *testCA) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
	}
	mount := func(source string, change func(map[string]func(http.ResponseWriter))) map[string]func(http.ResponseWriter) {
		paths := map[string]func(http.ResponseWriter){
			"m/health": jsonData(map[string]any{"version": "0.1.0", "commit": "abc"}),
			"m/cert":   jsonData(map[string]any{"certificate": pemOf(org), "ca_chain": []string{pemOf(org)}, "source": source}),
			"m/intermediate/cert": jsonData(map[string]any{"certificate": pemOf(inter), "ca_chain": []string{pemOf(inter), pemOf(org)},
				"previous": pemOf(prev), "previous_grace_until": now.Add(24 * time.Hour).UTC().Format(time.RFC3339), "source": "generated"}),
			"m/crl":                       fresh(inter),
			"m/issuer/org-ca/crl":         fresh(org),
			"m/issuer/" + prevID + "/crl": fresh(prev),
		}
		if change != nil {
			change(paths)
		}
		return paths
	}
	for _, tc := range []struct {
		name      string
		paths     map[string]func(http.ResponseWriter)
		code      int
		wantLines []string
		notAsked  string
	}{
		{"root mount, all fresh", mount("generated", nil), verifyOK, []string{
			"OK    CRL of the Mastio Intermediate CA (crl): number 3, 1 revoked certificate",
			"OK    CRL of the Org CA (issuer/org-ca/crl): number 3",
			"OK    CRL of the Rotated-out intermediate (issuer/" + prevID + "/crl): number 3",
			"Result: OK"}, ""},
		{"issuing mount: no Org CA CRL to read", mount("anchor", nil), verifyOK, []string{"OK    CRL of the Mastio Intermediate CA (crl)"}, "m/issuer/org-ca/crl"},
		{"the Org CA's CRL is stale", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/issuer/org-ca/crl"] = rawCRL(makeCRL(t, org, now.Add(-80*time.Hour), now.Add(-8*time.Hour), 0))
		}), verifyCritical, []string{"FAIL  CRL of the Org CA (issuer/org-ca/crl): its nextUpdate", "Result: CRITICAL (1 check failed, 0 warnings)"}, ""},
		{"the active CRL is in its last quarter", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/crl"] = rawCRL(makeCRL(t, inter, now.Add(-70*time.Hour), now.Add(2*time.Hour), 0))
		}), verifyWarning, []string{"WARN  CRL of the Mastio Intermediate CA (crl): next update", "Result: WARNING (1 warning)"}, ""},
		{"the active CRL is signed by the Org CA", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/crl"] = fresh(org)
		}), verifyCritical, []string{"FAIL  CRL of the Mastio Intermediate CA (crl): issued by CN=acme CA"}, ""},
		{"what is served is no CRL", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/crl"] = func(w http.ResponseWriter) { _, _ = w.Write([]byte("<html>")) }
		}), verifyCritical, []string{"FAIL  CRL of the Mastio Intermediate CA (crl): the mount serves 6 bytes that are not a CRL"}, ""},
		{"the rotated-out one publishes none", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			delete(p, "m/issuer/"+prevID+"/crl")
		}), verifyOK, []string{"OK    CRL of the Rotated-out intermediate (issuer/" + prevID + "/crl): none published"}, ""},
		{"a plugin without revocation", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/crl"] = vaultError(404, "unsupported path")
			p["m/issuer/org-ca/crl"] = vaultError(404, "unsupported path")
		}), verifyCritical, []string{"FAIL  CRL of the Mastio Intermediate CA (crl): not served: ", "upgrade it", "Result: CRITICAL (2 checks failed"}, ""},
		{"the CRL cannot be built", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/issuer/org-ca/crl"] = vaultError(500, "internal error")
		}), verifyCritical, []string{"FAIL  CRL of the Org CA (issuer/org-ca/crl): not served: "}, ""},
		{"no intermediate: the Org CA's CRL is the active one", mount("generated", func(p map[string]func(http.ResponseWriter)) {
			delete(p, "m/intermediate/cert")
			p["m/crl"] = fresh(org)
		}), verifyOK, []string{"OK    CRL of the Org CA (crl): number 3"}, "m/issuer/org-ca/crl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr, asked := verifyAgainst(t, tc.paths)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.wantLines {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
			if tc.notAsked != "" && slices.Contains(asked, tc.notAsked) {
				t.Errorf("verify read %s: %v", tc.notAsked, asked)
			}
		})
	}

	// Vault refusing the CRL read (a token policy, a sealed Vault) is not
	// a failed check: verify could not check.
	for _, status := range []int{403, 503} {
		f := &verifyFake{t: t, paths: mount("generated", func(p map[string]func(http.ResponseWriter)) {
			p["m/crl"] = vaultError(status, "permission denied; Vault is sealed")
		})}
		if code, stdout, stderr, _ := verifyAgainst(t, f.paths); code != verifyUnknown || !strings.Contains(stderr.String(), "could not check m/") {
			t.Errorf("status %d: exit %d, want %d\n%s%s", status, code, verifyUnknown, stdout.String(), stderr.String())
		}
	}
}

// TestVerifyPKCS11_FakeVault: verify says where each CA's key is (health's
// <ca>_key_backend), and fails, naming the problem, when health reports
// the mount's PKCS#11 token unavailable (pkcs11_error).
func TestVerifyPKCS11_FakeVault(t *testing.T) {
	now := time.Now()
	year := 365 * 24 * time.Hour
	org := makeCert(t, caTemplate("acme CA", now.Add(-time.Hour), now.Add(10*year)), nil)
	inter := makeCert(t, pathLen0(caTemplate("acme Mastio CA", now.Add(-time.Hour), now.Add(5*year))), org)
	pemOf := func(c *testCA) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
	}
	const (
		orgRef   = `CKA_ID 0a0b (label "mastio-ca/org-ca/0a0b")`
		interRef = `CKA_ID 0c0d (label "mastio-ca/intermediate-ca/0c0d")`
		gone     = `the PKCS#11 module has no token "mastio": is the token present and initialised?`
	)
	// mount serves a root mount whose health carries health.
	mount := func(source string, health map[string]any) map[string]func(http.ResponseWriter) {
		data := map[string]any{"version": "0.1.0", "commit": "abc"}
		for k, v := range health {
			data[k] = v
		}
		return map[string]func(http.ResponseWriter){
			"m/health": jsonData(data),
			"m/cert":   jsonData(map[string]any{"certificate": pemOf(org), "ca_chain": []string{pemOf(org)}, "source": source}),
			"m/intermediate/cert": jsonData(map[string]any{"certificate": pemOf(inter), "ca_chain": []string{pemOf(inter), pemOf(org)},
				"source": "generated"}),
			"m/crl":               rawCRL(makeCRL(t, inter, now.Add(-time.Hour), now.Add(71*time.Hour), 0)),
			"m/issuer/org-ca/crl": rawCRL(makeCRL(t, org, now.Add(-time.Hour), now.Add(71*time.Hour), 0)),
		}
	}
	bothInToken := map[string]any{
		"org-ca_key_backend": "pkcs11", "org-ca_pkcs11_key": orgRef,
		"intermediate-ca_key_backend": "pkcs11", "intermediate-ca_pkcs11_key": interRef,
	}
	with := func(base map[string]any, extra ...any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			out[extra[i].(string)] = extra[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		paths    map[string]func(http.ResponseWriter)
		code     int
		want     []string
		unwanted []string
	}{
		{"both keys in a token that works", mount("generated", with(bothInToken, "pkcs11_status", "ok")), verifyOK, []string{
			"OK    PKCS#11 token: the plugin logs in and finds every CA key in it",
			"OK    Org CA: key in the PKCS#11 token, as health reports; Vault holds only its reference: " + orgRef + " (its attributes are the token's to show: docs/hsm.md)",
			"OK    Mastio Intermediate CA: key in the PKCS#11 token, as health reports; Vault holds only its reference: " + interRef + " (its attributes are the token's to show: docs/hsm.md)",
			"Result: OK"}, []string{"key in Vault"}},
		{"the token is gone", mount("generated", with(bothInToken, "pkcs11_status", "unavailable", "pkcs11_error", gone)), verifyCritical, []string{
			"FAIL  PKCS#11 token: unavailable: " + gone + "; the Org CA and the Mastio Intermediate CA cannot sign until it is back (sign-csr answers 503); bring the token back",
			"OK    Org CA: key in the PKCS#11 token",
			"Result: CRITICAL (1 check failed, 0 warnings)"}, nil},
		{"only the intermediate in the token, the PIN refused", mount("generated", map[string]any{
			"org-ca_key_backend": "vault", "intermediate-ca_key_backend": "pkcs11", "intermediate-ca_pkcs11_key": interRef,
			"pkcs11_status": "unavailable", "pkcs11_error": `the PKCS#11 token "mastio" refused the PIN (CKR_PIN_INCORRECT)`,
		}), verifyCritical, []string{
			`FAIL  PKCS#11 token: unavailable: the PKCS#11 token "mastio" refused the PIN (CKR_PIN_INCORRECT); the Mastio Intermediate CA cannot sign until it is back`,
			"write the right PIN: vault write m/config/pkcs11 pin=@<file>",
			`OK    Org CA: key in Vault (in the CA's storage entry, under Vault's barrier encryption`,
			"OK    Mastio Intermediate CA: key in the PKCS#11 token, as health reports; Vault holds only its reference: " + interRef + " (its attributes are the token's to show: docs/hsm.md)"}, nil},
		{"a token configured that no CA uses, unavailable", mount("generated", map[string]any{
			"org-ca_key_backend": "vault", "intermediate-ca_key_backend": "vault", "pkcs11_status": "unavailable", "pkcs11_error": gone,
		}), verifyCritical, []string{"FAIL  PKCS#11 token: unavailable: " + gone + "; no CA's key is in it, but key_backend=pkcs11 cannot make one there",
			"OK    Mastio Intermediate CA: key in Vault"}, nil},
		{"no token, keys in Vault", mount("generated", map[string]any{"org-ca_key_backend": "vault", "intermediate-ca_key_backend": "vault"}), verifyOK,
			[]string{"OK    Org CA: key in Vault", "OK    Mastio Intermediate CA: key in Vault", "Result: OK"}, []string{"PKCS#11"}},
		{"an issuing mount: no Org CA key to place", mount("anchor", map[string]any{"org-ca_key_backend": "vault", "intermediate-ca_key_backend": "pkcs11", "intermediate-ca_pkcs11_key": interRef, "pkcs11_status": "ok"}), verifyOK,
			[]string{"OK    Mastio Intermediate CA: key in the PKCS#11 token"}, []string{"Org CA: key in"}},
		{"a plugin from before key backends", mount("generated", nil), verifyOK, []string{"Result: OK"}, []string{"key in", "PKCS#11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr, _ := verifyAgainst(t, tc.paths)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.want {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, u := range tc.unwanted {
				if strings.Contains(stdout.String(), u) {
					t.Errorf("output has %q:\n%s", u, stdout.String())
				}
			}
		})
	}

	// With proofs: sign-csr answering 503 for a key in the token fails that
	// CA's proof, with why, and verify goes on to the next CA.
	paths := mount("generated", with(bothInToken, "pkcs11_status", "unavailable", "pkcs11_error", gone))
	paths["m/config"] = jsonData(map[string]any{"org_id": "acme", "trust_domain": "cullis.local"})
	fake := &verifyFake{t: t, paths: paths}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/v1/")
		switch {
		case strings.HasPrefix(p, "m/roles/"):
			fake.asked = append(fake.asked, p)
			w.WriteHeader(http.StatusNoContent)
		case strings.HasPrefix(p, "m/sign-csr/"):
			fake.asked = append(fake.asked, p)
			vaultError(http.StatusServiceUnavailable, "signing certificate: "+gone)(w)
		default:
			fake.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test")
	t.Setenv("VAULT_MAX_RETRIES", "0")
	var stdout, stderr bytes.Buffer
	code := runVerify(t.Context(), []string{"--mount", "m"}, &stdout, &stderr)
	out := stdout.String()
	if code != verifyCritical || !strings.Contains(out, "FAIL  Mastio Intermediate CA: proof of possession: its key is in the PKCS#11 token, which cannot sign now: ") ||
		!strings.Contains(out, "FAIL  Org CA: proof of possession: its key is in the PKCS#11 token, which cannot sign now: ") || !strings.Contains(out, "Result: CRITICAL (3 checks failed") {
		t.Errorf("verify with the token unable to sign: exit %d\n%s%s", code, out, stderr.String())
	}
	if strings.Contains(stderr.String(), "could not check") {
		t.Errorf("a 503 from the token is a failed check, not an unchecked mount:\n%s", stderr.String())
	}
}

// verifyAgainst runs `verify --mount m --prove=false` against a fake Vault
// serving paths, and returns its exit code, its output and the paths it
// read.
func verifyAgainst(t *testing.T, paths map[string]func(http.ResponseWriter)) (code int, stdout, stderr *bytes.Buffer, asked []string) {
	t.Helper()
	f := &verifyFake{t: t, paths: paths}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test")
	t.Setenv("VAULT_MAX_RETRIES", "0")
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	code = runVerify(t.Context(), []string{"--mount", "m", "--prove=false"}, stdout, stderr)
	return code, stdout, stderr, f.asked
}
