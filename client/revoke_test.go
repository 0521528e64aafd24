package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"
)

// newTestClient is a client for the engine at mastio-ca/ of a fake Vault
// served by h.
func newTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	conf := api.DefaultConfig()
	conf.Address = srv.URL
	conf.MaxRetries = 0
	vc, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken("test")
	return New(vc, "mastio-ca")
}

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// issue makes a certificate from tmpl signed by parent (self-signed when
// parent is nil).
func issue(t *testing.T, tmpl *x509.Certificate, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func newTestCA(t *testing.T, cn string) *testCA {
	return issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil)
}

func TestRevoke_SendsAndParses(t *testing.T) {
	var got map[string]any
	var path string
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		got = nil
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"serial_number":"4f:2a","revocation_time":"2026-12-01T10:00:00Z","reason":"keyCompromise",
			"not_after":"2027-01-31T12:00:00Z","issuer_id":"ab01","already_revoked":true,"crl_number":7}}`))
	})
	notAfter := time.Date(2027, 1, 31, 13, 0, 0, 500, time.FixedZone("CET", 3600))
	rev, err := c.Revoke(context.Background(), RevokeRequest{SerialNumber: "4f:2a", Issuer: "intermediate-ca", NotAfter: notAfter, Reason: "keyCompromise"})
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v1/mastio-ca/revoke" {
		t.Errorf("path %s", path)
	}
	want := map[string]any{"serial_number": "4f:2a", "issuer": "intermediate-ca", "not_after": "2027-01-31T12:00:00Z", "reason": "keyCompromise"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	wantRev := &Revocation{SerialNumber: "4f:2a", RevokedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Reason: "keyCompromise",
		NotAfter: time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC), IssuerID: "ab01", AlreadyRevoked: true, CRLNumber: 7}
	if !rev.RevokedAt.Equal(wantRev.RevokedAt) || !rev.NotAfter.Equal(wantRev.NotAfter) {
		t.Errorf("times %v %v", rev.RevokedAt, rev.NotAfter)
	}
	rev.RevokedAt, rev.NotAfter = wantRev.RevokedAt, wantRev.NotAfter
	if !reflect.DeepEqual(rev, wantRev) {
		t.Errorf("got %+v, want %+v", rev, wantRev)
	}

	// The certificate form sends the certificate only.
	if _, err := c.Revoke(context.Background(), RevokeRequest{Certificate: "-----BEGIN CERTIFICATE-----"}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"certificate": "-----BEGIN CERTIFICATE-----"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
}

func TestRevocationErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		call   func(*Client) error
		want   error
	}{
		{"revoke refused", 400, func(c *Client) error { _, err := c.Revoke(context.Background(), RevokeRequest{}); return err }, ErrInvalidRequest},
		{"revoke without a CA", 404, func(c *Client) error { _, err := c.Revoke(context.Background(), RevokeRequest{}); return err }, ErrNotFound},
		{"revoke denied", 403, func(c *Client) error { _, err := c.Revoke(context.Background(), RevokeRequest{}); return err }, ErrPermissionDenied},
		{"tidy denied", 403, func(c *Client) error { _, err := c.Tidy(context.Background()); return err }, ErrPermissionDenied},
		{"crl of an anchor", 404, func(c *Client) error { _, _, err := c.CRL(context.Background(), "org-ca", false); return err }, ErrNotFound},
		{"crl on a standby that cannot start one", 422, func(c *Client) error { _, _, err := c.CRL(context.Background(), "", false); return err }, ErrCAState},
		{"ocsp sealed", 503, func(c *Client) error {
			ca := newTestCA(t, "ca")
			_, err := c.OCSPStatus(context.Background(), ca.cert, ca.cert)
			return err
		}, ErrSealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"errors":["no"]}`
			if tc.status == 503 {
				body = `{"errors":["Vault is sealed"]}`
			}
			err := tc.call(New(fakeVault(t, tc.status, body), "mastio-ca"))
			var e *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.StatusCode != tc.status {
				t.Fatalf("err = %#v, want %v with status %d", err, tc.want, tc.status)
			}
			if errors.Is(err, ErrPolicy) {
				t.Error("a revocation refusal is not a signing policy's")
			}
		})
	}
}

func TestTidy(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodPost || r.URL.Path != "/v1/mastio-ca/tidy" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		_, _ = w.Write([]byte(`{"data":{"revocations_removed":3,"retired_keys_dropped":1}}`))
	})
	res, err := c.Tidy(context.Background())
	if err != nil || *res != (TidyResult{RevocationsRemoved: 3, RetiredKeysDropped: 1}) {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestCRL_PathsAndParsing(t *testing.T) {
	ca := newTestCA(t, "acme Mastio CA")
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(5), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(72 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: time.Now()}},
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	body := der
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(body)
	})
	for _, tc := range []struct {
		ref   string
		delta bool
		path  string
	}{
		{"", false, "/v1/mastio-ca/crl"},
		{"", true, "/v1/mastio-ca/crl/delta"},
		{"org-ca", false, "/v1/mastio-ca/issuer/org-ca/crl"},
		{"0a1b2c", true, "/v1/mastio-ca/issuer/0a1b2c/crl/delta"},
	} {
		paths = nil
		list, raw, err := c.CRL(context.Background(), tc.ref, tc.delta)
		if err != nil {
			t.Fatalf("%q %v: %v", tc.ref, tc.delta, err)
		}
		if len(paths) != 1 || paths[0] != tc.path {
			t.Errorf("%q %v read %v, want %s", tc.ref, tc.delta, paths, tc.path)
		}
		if !bytes.Equal(raw, der) || list.Number.Int64() != 5 || len(list.RevokedCertificateEntries) != 1 || list.CheckSignatureFrom(ca.cert) != nil {
			t.Errorf("%q: parsed %+v", tc.ref, list)
		}
	}

	// A reference that would name another path is refused before asking.
	for _, ref := range []string{"..", ".", "a/b", "org-ca?x", "a%2F"} {
		paths = nil
		if _, _, err := c.CRL(context.Background(), ref, false); !errors.Is(err, ErrInvalidRequest) || len(paths) != 0 {
			t.Errorf("ref %q: %v, asked %v", ref, err, paths)
		}
	}

	// An answer that is no CRL is an error that carries what was served.
	body = []byte("<html>proxy error</html>")
	list, raw, err := c.CRL(context.Background(), "", false)
	if err == nil || list != nil || string(raw) != string(body) || !strings.Contains(err.Error(), "not a DER CRL") {
		t.Fatalf("list %v, raw %q, err %v", list, raw, err)
	}
}

// ocspResponder is a fake Vault's ocsp/<base64> path: it checks how the
// request reached it and answers as answer says.
type ocspResponder struct {
	t       *testing.T
	issuer  *testCA
	answer  func(req *ocsp.Request) ([]byte, error)
	rawPath string // the path as it came over the wire
	b64     string
}

func (o *ocspResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.rawPath = r.URL.EscapedPath()
	b64, ok := strings.CutPrefix(r.URL.Path, "/v1/mastio-ca/ocsp/")
	if !ok || r.Method != http.MethodGet {
		o.t.Errorf("%s %s", r.Method, r.URL.Path)
	}
	o.b64 = b64
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		o.t.Errorf("the path's base64 %q: %v", b64, err)
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		o.t.Errorf("the OCSP request: %v", err)
		return
	}
	resp, err := o.answer(req)
	if err != nil {
		o.t.Error(err)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(resp)
}

func TestOCSPStatus(t *testing.T) {
	inter := newTestCA(t, "acme Mastio CA")
	other := newTestCA(t, "another CA")
	leaf := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent"}}, inter)
	responderOK := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "responder"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, inter)
	otherLeaf := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "agent-2"}}, inter) // a leaf, not a responder
	now := time.Now()
	revokedAt := now.Add(-time.Minute).UTC().Truncate(time.Second)

	sign := func(by *testCA, embed *x509.Certificate, tmpl ocsp.Response) func(*ocsp.Request) ([]byte, error) {
		return func(req *ocsp.Request) ([]byte, error) {
			tmpl.SerialNumber, tmpl.IssuerHash, tmpl.Certificate = req.SerialNumber, req.HashAlgorithm, embed
			if tmpl.ThisUpdate.IsZero() {
				tmpl.ThisUpdate, tmpl.NextUpdate = now.Add(-time.Hour), now.Add(time.Hour)
			}
			return ocsp.CreateResponse(inter.cert, by.cert, tmpl, by.key)
		}
	}
	for _, tc := range []struct {
		name    string
		answer  func(*ocsp.Request) ([]byte, error)
		status  int
		want    error  // a sentinel, or nil
		wantErr string // part of the message when it fails
	}{
		{"good", sign(inter, nil, ocsp.Response{Status: ocsp.Good}), ocsp.Good, nil, ""},
		{"revoked", sign(inter, nil, ocsp.Response{Status: ocsp.Revoked, RevokedAt: revokedAt, RevocationReason: ocsp.KeyCompromise}), ocsp.Revoked, nil, ""},
		{"delegated responder", sign(responderOK, responderOK.cert, ocsp.Response{Status: ocsp.Good}), ocsp.Good, nil, ""},
		{"unknown, signed by the mount's own CA", sign(other, nil, ocsp.Response{Status: ocsp.Unknown}), 0, ErrNotFound, "does not hold the issuer"},
		{"good, signed by another CA", sign(other, nil, ocsp.Response{Status: ocsp.Good}), 0, nil, "does not verify under the issuer"},
		{"a leaf posing as a responder", sign(otherLeaf, otherLeaf.cert, ocsp.Response{Status: ocsp.Good}), 0, nil, "not authorized for OCSP signing"},
		{"unknown, signed by the issuer", sign(inter, nil, ocsp.Response{Status: ocsp.Unknown}), 0, ErrNotFound, "unknown"},
		{"stale", sign(inter, nil, ocsp.Response{Status: ocsp.Good, ThisUpdate: now.Add(-3 * time.Hour), NextUpdate: now.Add(-time.Hour)}), 0, nil, "stale"},
		{"malformed request", func(*ocsp.Request) ([]byte, error) { return ocsp.MalformedRequestErrorResponse, nil }, 0, nil, "malformed"},
		{"garbage", func(*ocsp.Request) ([]byte, error) { return []byte("nope"), nil }, 0, nil, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &ocspResponder{t: t, issuer: inter, answer: tc.answer}
			c := newTestClient(t, o.ServeHTTP)
			resp, err := c.OCSPStatus(context.Background(), leaf.cert, inter.cert)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != tc.status || resp.SerialNumber.Cmp(leaf.cert.SerialNumber) != 0 {
					t.Fatalf("status %d serial %v", resp.Status, resp.SerialNumber)
				}
				if tc.status == ocsp.Revoked && (!resp.RevokedAt.Equal(revokedAt) || resp.RevocationReason != ocsp.KeyCompromise) {
					t.Errorf("revoked at %v, reason %d", resp.RevokedAt, resp.RevocationReason)
				}
				return
			}
			var e *Error
			if err == nil || !errors.As(err, &e) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want an *Error saying %q", err, tc.wantErr)
			}
			if tc.want != nil && !errors.Is(err, tc.want) || tc.want == nil && errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.want)
			}
			if resp != nil {
				t.Error("an answer that failed is returned")
			}
		})
	}

	if _, err := New(fakeVault(t, 200, ""), "m").OCSPStatus(context.Background(), nil, inter.cert); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no certificate: %v", err)
	}
}

// TestOCSPStatus_Escaping: base64's '/', '+' and '=' leave percent-encoded
// (a "//" would be cleaned away by the api client, or redirected by Go's
// server), and the path Vault decodes is the base64 itself.
func TestOCSPStatus_Escaping(t *testing.T) {
	inter := newTestCA(t, "acme Mastio CA")
	var sawSlash, sawPlus, sawPad bool
	for _, serial := range escapingSerials() {
		cert := &x509.Certificate{SerialNumber: serial}
		o := &ocspResponder{t: t, issuer: inter, answer: func(req *ocsp.Request) ([]byte, error) {
			return ocsp.CreateResponse(inter.cert, inter.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, IssuerHash: req.HashAlgorithm,
				ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, inter.key)
		}}
		c := newTestClient(t, o.ServeHTTP)
		if _, err := c.OCSPStatus(context.Background(), cert, inter.cert); err != nil {
			t.Fatalf("serial %x: %v", serial, err)
		}
		encoded := strings.TrimPrefix(o.rawPath, "/v1/mastio-ca/ocsp/")
		if strings.ContainsAny(encoded, "/+=") {
			t.Errorf("sent %s unescaped", o.rawPath)
		}
		sawSlash = sawSlash || strings.Contains(o.b64, "//")
		sawPlus = sawPlus || strings.Contains(o.b64, "+")
		sawPad = sawPad || strings.HasSuffix(o.b64, "=")
	}
	if !sawSlash || !sawPlus || !sawPad {
		t.Fatalf("the serials did not make base64 with //, + and = padding: %v %v %v", sawSlash, sawPlus, sawPad)
	}
}

// escapingSerials are serials whose OCSP requests' base64 holds "//",
// "+" and padding: runs of 0xff and 0xfb bytes at each alignment.
func escapingSerials() []*big.Int {
	var out []*big.Int
	for lead := 1; lead <= 3; lead++ {
		b := bytes.Repeat([]byte{0x01}, lead)
		b = append(b, bytes.Repeat([]byte{0xff}, 6)...)
		b = append(b, bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, 3)...)
		out = append(out, new(big.Int).SetBytes(b))
	}
	return out
}

// TestRevocation_RealVault runs revoke, the CRLs, OCSP and tidy against
// the dev Vault TestMain starts (none with -short): the paths and the
// escaping as Vault's router and the plugin see them.
func TestRevocation_RealVault(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the dev Vault TestMain starts without -short")
	}
	vc, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := New(vc, "mastio-ca")
	inter, err := c.Intermediate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ca := inter.Certificate

	// OCSP for serials whose base64 holds "//", "+" and "=": the mount
	// answers good for any serial of an issuer it holds.
	for _, serial := range escapingSerials() {
		resp, err := c.OCSPStatus(ctx, &x509.Certificate{SerialNumber: serial}, ca)
		if err != nil {
			t.Fatalf("serial %x: %v", serial, err)
		}
		if resp.Status != ocsp.Good || resp.SerialNumber.Cmp(serial) != 0 {
			t.Fatalf("serial %x: status %d for %x", serial, resp.Status, resp.SerialNumber)
		}
	}

	before, _, err := c.CRL(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// Revoke by serial, as a caller that kept only the serial does.
	serial := escapingSerials()[0]
	notAfter := time.Now().Add(time.Hour).Truncate(time.Second)
	rev, err := c.Revoke(ctx, RevokeRequest{SerialNumber: serial.Text(16), Issuer: "intermediate-ca", NotAfter: notAfter, Reason: "superseded"})
	if err != nil {
		t.Fatal(err)
	}
	if rev.AlreadyRevoked || rev.Reason != "superseded" || rev.IssuerID == "" || !rev.NotAfter.Equal(notAfter) || rev.CRLNumber <= before.Number.Int64() || time.Since(rev.RevokedAt) > time.Minute {
		t.Fatalf("revocation %+v (CRL before: %d)", rev, before.Number)
	}
	again, err := c.Revoke(ctx, RevokeRequest{SerialNumber: serial.Text(16), Issuer: rev.IssuerID, NotAfter: notAfter, Reason: "keyCompromise"})
	if err != nil || !again.AlreadyRevoked || again.Reason != "superseded" || !again.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("second revoke: %+v, %v", again, err)
	}

	for _, ref := range []string{"", "intermediate-ca", rev.IssuerID} {
		for _, delta := range []bool{false, true} {
			list, _, err := c.CRL(ctx, ref, delta)
			if err != nil {
				t.Fatalf("CRL %q delta %v: %v", ref, delta, err)
			}
			if err := list.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("CRL %q delta %v: %v", ref, delta, err)
			}
			found := false
			for _, e := range list.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(serial) == 0 {
					found = e.ReasonCode == ocsp.Superseded
				}
			}
			if !found {
				t.Errorf("CRL %q delta %v does not list %x as superseded", ref, delta, serial)
			}
		}
	}
	org, _, err := c.CRL(ctx, "org-ca", false)
	if err != nil {
		t.Fatal(err)
	}
	orgCA, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := org.CheckSignatureFrom(orgCA.Certificate); err != nil {
		t.Errorf("the Org CA's CRL: %v", err)
	}

	resp, err := c.OCSPStatus(ctx, &x509.Certificate{SerialNumber: serial}, ca)
	if err != nil || resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.Superseded || !resp.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("OCSP after revoke: %+v, %v", resp, err)
	}
	// An issuer the mount does not hold.
	stranger := newTestCA(t, "stranger")
	if _, err := c.OCSPStatus(ctx, &x509.Certificate{SerialNumber: serial}, stranger.cert); !errors.Is(err, ErrNotFound) {
		t.Errorf("OCSP for a stranger's certificate: %v", err)
	}
	if _, err := c.Tidy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, RevokeRequest{SerialNumber: "01", Issuer: "nobody", NotAfter: notAfter}); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke under an unknown issuer: %v", err)
	}
	if _, err := c.Revoke(ctx, RevokeRequest{Certificate: "junk"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("revoke of junk: %v", err)
	}
}
