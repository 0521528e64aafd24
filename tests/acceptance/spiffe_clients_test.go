package acceptance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/certutil"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// These tests replay, byte for byte, what SPIRE's UpstreamAuthority
// "vault" and cert-manager's Vault issuer send, and judge the answers as
// those clients parse them (../shared/reference/spiffe-clients.md), with
// go-spiffe as the SPIFFE judge.

var trustDomain = spiffeid.RequireTrustDomainFromString("cullis.local")

// httpDo sends one request with net/http, a token only when one is given.
func httpDo(t *testing.T, method, rawURL, token string, body []byte, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// envelope is Vault's JSON answer, data kept raw so that its JSON types
// can be checked as a strict client would.
type envelope struct {
	Data     map[string]json.RawMessage `json:"data"`
	Warnings []string                   `json:"warnings"`
	Errors   []string                   `json:"errors"`
}

func decodeEnvelope(t *testing.T, body []byte) *envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("the answer is not Vault's JSON envelope: %v\n%.300s", err, body)
	}
	return &e
}

// pemCount counts PEM blocks in s and reports whether anything but
// whitespace is left around them.
func pemCount(s string) (n int, junk bool) {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return n, len(bytes.TrimSpace(rest)) > 0
		}
		n++
	}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func csrPEMFor(t *testing.T, tmpl *x509.CertificateRequest, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func pkcs8(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// issueLeaf has ca (key caKey) sign an SVID-shaped leaf for uri, as a
// SPIRE server signs its workloads' SVIDs.
func issueLeaf(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, uri string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newECKey(t)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:          serial,
		URIs:                  []*url.URL{mustParseURL(t, uri)},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, key
}

// bundleAuthorities reads the mount's SPIFFE bundle without a token and
// returns its X.509 authorities as go-spiffe parses them.
func bundleAuthorities(t *testing.T, mount string) []*x509.Certificate {
	t.Helper()
	code, body := unauthenticatedGet(t, mount+"/bundle")
	if code != 200 {
		t.Fatalf("GET %s/bundle: %d %.300s", mount, code, body)
	}
	b, err := spiffebundle.Parse(trustDomain, []byte(body))
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v\n%s", err, body)
	}
	return b.X509Authorities()
}

// hasExtension reports whether c carries extension oid, and if critical.
func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) (present, critical bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true, e.Critical
		}
	}
	return false, false
}

var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

// TestSPIRE_SignIntermediateReplay is SPIRE's UpstreamAuthority "vault"
// minting its X.509 CA: its CSR, its PUT body, its response parsing and
// the credvalidator's throwaway-SVID check.
func TestSPIRE_SignIntermediateReplay(t *testing.T) {
	mount, _, org, _ := newCA(t, false)
	_, orgPEM := unauthenticatedGet(t, mount+"/cert/pem")

	// SPIRE's CSR: default ca_subject C=US, O=SPIFFE, a random subject
	// serialNumber, no CN; the trust domain's ID as the one URI SAN.
	spireCSR := func() (string, *ecdsa.PrivateKey) {
		key := newECKey(t)
		return csrPEMFor(t, &x509.CertificateRequest{
			Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"SPIFFE"}, SerialNumber: randomHex(16)},
			URIs:    []*url.URL{mustParseURL(t, "spiffe://cullis.local")},
		}, key), key
	}
	// The body SPIRE's Go client marshals: a map, so keys in order, and
	// every value a string.
	spireBody := func(csr, ttl string) []byte {
		b, err := json.Marshal(map[string]string{
			"common_name": "", "country": "US", "csr": csr, "organization": "SPIFFE", "ttl": ttl, "uri_sans": "spiffe://cullis.local",
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// mint sends the request and checks the answer as SPIRE's plugin and
	// server would; it returns the SPIRE CA and its upstream root.
	mint := func(csr, ttl string, wantLife time.Duration) (*x509.Certificate, *x509.Certificate) {
		t.Helper()
		body := spireBody(csr, ttl)
		wantPrefix := `{"common_name":"","country":"US","csr":"-----BEGIN CERTIFICATE REQUEST-----\n`
		wantSuffix := `-----END CERTIFICATE REQUEST-----\n","organization":"SPIFFE","ttl":"` + ttl + `","uri_sans":"spiffe://cullis.local"}`
		if !bytes.HasPrefix(body, []byte(wantPrefix)) || !bytes.HasSuffix(body, []byte(wantSuffix)) {
			t.Fatalf("the replayed body is not SPIRE's: %s", body)
		}
		sent := time.Now()
		code, _, raw := httpDo(t, http.MethodPut, server.addr+"/v1/"+mount+"/root/sign-intermediate", server.token, body, nil)
		if code != 200 {
			t.Fatalf("PUT root/sign-intermediate (ttl %q): %d %s", ttl, code, raw)
		}
		e := decodeEnvelope(t, raw)
		if len(e.Data) == 0 {
			t.Fatalf("empty data: %s", raw)
		}
		for _, w := range e.Warnings {
			if strings.Contains(w, "unrecognized") {
				t.Errorf("warning on a field SPIRE sends: %s", w)
			}
		}
		var certificate, issuingCA string
		var chain []string
		if err := json.Unmarshal(e.Data["certificate"], &certificate); err != nil {
			t.Fatalf("certificate is not a string: %v", err)
		}
		if n, junk := pemCount(certificate); n != 1 || junk {
			t.Fatalf("certificate holds %d PEM blocks (junk %v); SPIRE wants exactly one", n, junk)
		}
		if err := json.Unmarshal(e.Data["issuing_ca"], &issuingCA); err != nil || issuingCA == "" {
			t.Fatalf("issuing_ca missing or not a string: %v %s", err, e.Data["issuing_ca"])
		}
		if rawChain := bytes.TrimSpace(e.Data["ca_chain"]); len(rawChain) == 0 || rawChain[0] != '[' {
			t.Fatalf("ca_chain is not a JSON array: %s", rawChain)
		}
		if err := json.Unmarshal(e.Data["ca_chain"], &chain); err != nil {
			t.Fatalf("ca_chain is not an array of strings: %v", err)
		}
		if len(chain) == 0 {
			t.Fatal("ca_chain is empty")
		}
		for i, p := range chain {
			if n, junk := pemCount(p); n != 1 || junk {
				t.Fatalf("ca_chain[%d] holds %d PEM blocks (junk %v)", i, n, junk)
			}
		}
		if chain[0] != certificate {
			t.Fatal("ca_chain[0] is not string-equal to certificate")
		}
		if chain[len(chain)-1] != orgPEM {
			t.Fatalf("the last ca_chain entry is not cert/pem:\n%q\nvs\n%q", chain[len(chain)-1], orgPEM)
		}
		// SPIRE's X509CaChain: certificate, then what is neither the root
		// nor string-equal to certificate. Nothing must be in between.
		if len(chain) != 2 {
			t.Fatalf("ca_chain has %d entries; SPIRE would hand the ones between certificate and the root to every workload", len(chain))
		}
		c, upstream := certOf(t, certificate), certOf(t, chain[len(chain)-1])
		if !upstream.Equal(org.Certificate) || c.CheckSignatureFrom(upstream) != nil {
			t.Fatal("the SPIRE CA was not signed directly by the upstream root (the Org CA)")
		}
		const allowed = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		switch {
		case !c.BasicConstraintsValid || !c.IsCA:
			t.Fatal("the SPIRE CA is not a CA")
		case c.MaxPathLen != 0 || !c.MaxPathLenZero:
			t.Fatalf("pathLen %d (zero %v), want 0", c.MaxPathLen, c.MaxPathLenZero)
		case c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&^allowed != 0:
			t.Fatalf("keyUsage %b", c.KeyUsage)
		case len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://cullis.local":
			t.Fatalf("URI SANs %v", c.URIs)
		}
		if d := c.NotAfter.Sub(sent.Add(wantLife)); d < -time.Minute || d > time.Minute {
			t.Fatalf("NotAfter %s, want about %s (ttl %q)", c.NotAfter, sent.Add(wantLife), ttl)
		}
		var expiration int64
		if err := json.Unmarshal(e.Data["expiration"], &expiration); err != nil || expiration != c.NotAfter.Unix() {
			t.Fatalf("expiration %s, want %d", e.Data["expiration"], c.NotAfter.Unix())
		}
		assertLints(t, certificate)
		t.Logf("SPIRE replay ttl=%q: 200, serial %s, CN %q, KU %b, NotAfter %s, warnings %q",
			ttl, serialHex(c), c.Subject.CommonName, c.KeyUsage, c.NotAfter.UTC().Format(time.RFC3339), e.Warnings)
		return c, upstream
	}
	// credvalidator: the new CA signs a throwaway SVID, verified with Go
	// x509 against the upstream roots only.
	throwaway := func(ca *x509.Certificate, key crypto.Signer, upstream *x509.Certificate) {
		t.Helper()
		leaf, _ := issueLeaf(t, ca, key, "spiffe://cullis.local/spire/throwaway")
		bundle := x509bundle.FromX509Authorities(trustDomain, []*x509.Certificate{upstream})
		id, chains, err := x509svid.ParseAndVerify([][]byte{leaf.Raw, ca.Raw}, bundle)
		if err != nil {
			t.Fatalf("the throwaway SVID does not verify: %v", err)
		}
		if id.String() != "spiffe://cullis.local/spire/throwaway" || len(chains) != 1 || len(chains[0]) != 3 {
			t.Fatalf("throwaway verified as %s with chains %d", id, len(chains))
		}
	}

	csr, key := spireCSR()
	ca, upstream := mint(csr, "86400", 86400*time.Second)
	throwaway(ca, key, upstream)
	if present, _ := hasExtension(ca, oidNameConstraints); present {
		t.Fatal("a name constraint without root/profile uri_name_constraint")
	}

	// ca_ttl 0: SPIRE sends ttl "", the profile's ttl applies.
	prof, err := server.root.Logical().ReadWithContext(t.Context(), mount+"/root/profile")
	if err != nil {
		t.Fatal(err)
	}
	profTTL, err := prof.Data["ttl"].(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	csr2, key2 := spireCSR()
	ca2, up2 := mint(csr2, "", time.Duration(profTTL)*time.Second)
	throwaway(ca2, key2, up2)

	// With the URI name constraint the SPIRE CA can issue in the trust
	// domain only, and the throwaway still verifies.
	if _, err := server.root.Logical().WriteWithContext(t.Context(), mount+"/root/profile", map[string]any{"uri_name_constraint": true}); err != nil {
		t.Fatal(err)
	}
	csr3, key3 := spireCSR()
	ca3, up3 := mint(csr3, "86400", 86400*time.Second)
	if present, critical := hasExtension(ca3, oidNameConstraints); !present || !critical {
		t.Fatalf("nameConstraints present %v critical %v", present, critical)
	}
	if !slices.Equal(ca3.PermittedURIDomains, []string{"cullis.local"}) || !ca3.PermittedDNSDomainsCritical {
		t.Fatalf("permitted URI domains %v (critical %v)", ca3.PermittedURIDomains, ca3.PermittedDNSDomainsCritical)
	}
	throwaway(ca3, key3, up3)
	roots := x509.NewCertPool()
	roots.AddCert(org.Certificate)
	verifyUnder := func(ca *x509.Certificate, caKey crypto.Signer, uri string) error {
		leaf, _ := issueLeaf(t, ca, caKey, uri)
		mids := x509.NewCertPool()
		mids.AddCert(ca)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: mids, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	err = verifyUnder(ca3, key3, "spiffe://other.example/x")
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
		t.Fatalf("a spiffe://other.example/x leaf under the constrained SPIRE CA: %v, want CANotAuthorizedForThisName", err)
	}
	if err := verifyUnder(ca, key, "spiffe://other.example/x"); err != nil {
		t.Fatalf("without the constraint the same leaf verifies (control): %v", err)
	}
	t.Logf("uri_name_constraint=true: nameConstraints critical, permitted URI domain cullis.local; throwaway SVID verifies; spiffe://other.example/x fails: %v", err)
}

// certManagerChain does what cert-manager does with a ParsedCertBundle:
// the leaf and every ca_chain certificate, deduplicated, linked into one
// chain by issuer and signature; tls.crt is the chain without a
// self-signed root, ca.crt the root (or the top-most certificate).
func certManagerChain(b *certutil.ParsedCertBundle) (tlsCrt []*x509.Certificate, caCrt *x509.Certificate, err error) {
	var pool []*x509.Certificate
	for _, cb := range b.CAChain {
		if cb.Certificate.Equal(b.Certificate) || slices.ContainsFunc(pool, cb.Certificate.Equal) {
			continue
		}
		pool = append(pool, cb.Certificate)
	}
	chain := []*x509.Certificate{b.Certificate}
	for {
		cur := chain[len(chain)-1]
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) && cur.CheckSignatureFrom(cur) == nil {
			break
		}
		i := slices.IndexFunc(pool, func(c *x509.Certificate) bool {
			return bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil
		})
		if i < 0 {
			break
		}
		chain = append(chain, pool[i])
		pool = slices.Delete(pool, i, i+1)
	}
	if len(pool) > 0 {
		return nil, nil, fmt.Errorf("certificate chain is malformed or broken: %d certificates do not link", len(pool))
	}
	top := chain[len(chain)-1]
	if len(chain) > 1 && bytes.Equal(top.RawIssuer, top.RawSubject) {
		return chain[:len(chain)-1], top, nil
	}
	return chain, top, nil
}

func parsePKIAnswer(t *testing.T, raw []byte) (map[string]any, []string, *certutil.ParsedCertBundle) {
	t.Helper()
	var e struct {
		Data     map[string]any `json:"data"`
		Warnings []string       `json:"warnings"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // as the Vault API client that cert-manager uses
	if err := dec.Decode(&e); err != nil {
		t.Fatal(err)
	}
	b, err := certutil.ParsePKIMap(e.Data)
	if err != nil {
		t.Fatalf("certutil.ParsePKIMap: %v", err)
	}
	if b.Certificate == nil {
		t.Fatal("ParsePKIMap found no certificate")
	}
	return e.Data, e.Warnings, b
}

// TestCertManager_SignReplay is cert-manager's Vault issuer: a POST with
// its strings-only body to sign/<role>, parsed with the SDK function it
// uses, and its isCA request to root/sign-intermediate.
func TestCertManager_SignReplay(t *testing.T) {
	ctx := t.Context()
	mount, _, org, inter := newCA(t, true)
	dir := t.TempDir()

	help := mustVault(t, dir, "path-help", mount+"/roles/cm-spiffe")
	for _, f := range []string{"uri_san_pattern", "uri_san_count", "ext_key_usage", "key_usage", "ttl", "max_ttl", "subject_common_name", "subject_organization"} {
		if !strings.Contains(help, f) {
			t.Fatalf("path-help roles lacks %s", f)
		}
	}
	if _, err := server.root.Logical().WriteWithContext(ctx, mount+"/roles/cm-spiffe", map[string]any{
		"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "uri_san_count": 1,
		"ext_key_usage": "ServerAuth,ClientAuth", "key_usage": "DigitalSignature",
		"ttl": "24h", "max_ttl": "2160h", "subject_common_name": "", "subject_organization": "",
	}); err != nil {
		t.Fatal(err)
	}

	key := newECKey(t)
	csr := csrPEMFor(t, &x509.CertificateRequest{URIs: []*url.URL{mustParseURL(t, "spiffe://cullis.local/acme/web")}}, key)
	cmBody := func(csr, cn, alt, uris, ttl string) []byte {
		b, err := json.Marshal(map[string]string{
			"alt_names": alt, "common_name": cn, "csr": csr, "exclude_cn_from_sans": "true", "ip_sans": "", "ttl": ttl, "uri_sans": uris,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"alt_names":"`+alt+`","common_name":"`+cn+`","csr":"-----BEGIN CERTIFICATE REQUEST-----\n`)) {
			t.Fatalf("the replayed body is not cert-manager's: %s", b)
		}
		return b
	}
	post := func(path string, body []byte) (int, []byte) {
		t.Helper()
		code, _, raw := httpDo(t, http.MethodPost, server.addr+"/v1/"+mount+"/"+path, server.token, body, nil)
		return code, raw
	}

	bundle := x509bundle.FromX509Authorities(trustDomain, bundleAuthorities(t, mount))
	sign := func(ttl string, wantLife time.Duration) []string {
		t.Helper()
		sent := time.Now()
		code, raw := post("sign/cm-spiffe", cmBody(csr, "", "", "spiffe://cullis.local/acme/web", ttl))
		if code != 200 {
			t.Fatalf("POST sign/cm-spiffe ttl %s: %d %s", ttl, code, raw)
		}
		data, warnings, b := parsePKIAnswer(t, raw)
		certPEM, _ := data["certificate"].(string)
		if n, junk := pemCount(certPEM); n != 1 || junk {
			t.Fatalf("certificate holds %d PEM blocks", n)
		}
		assertLints(t, certPEM)
		list, ok := data["ca_chain"].([]any)
		if !ok || len(list) != 2 || len(b.CAChain) != 2 {
			t.Fatalf("ca_chain %T with %d entries, want [intermediate, Org CA]", data["ca_chain"], len(list))
		}
		for i, p := range list {
			if p == certPEM || b.CAChain[i].Certificate.Equal(b.Certificate) {
				t.Fatal("ca_chain holds the leaf")
			}
		}
		leaf := b.Certificate
		if !b.CAChain[0].Certificate.Equal(inter.Certificate) || !b.CAChain[1].Certificate.Equal(org.Certificate) ||
			leaf.CheckSignatureFrom(inter.Certificate) != nil || inter.Certificate.CheckSignatureFrom(org.Certificate) != nil {
			t.Fatal("the answer does not link leaf → intermediate → Org CA")
		}
		tlsCrt, caCrt, err := certManagerChain(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(tlsCrt) != 2 || !tlsCrt[0].Equal(leaf) || !tlsCrt[1].Equal(inter.Certificate) || !caCrt.Equal(org.Certificate) {
			t.Fatalf("tls.crt holds %d certificates; ca.crt is %q", len(tlsCrt), caCrt.Subject)
		}
		if d := leaf.NotAfter.Sub(sent.Add(wantLife)); d < -time.Minute || d > time.Minute {
			t.Fatalf("NotAfter %s, want about %s", leaf.NotAfter, sent.Add(wantLife))
		}
		if exp, err := data["expiration"].(json.Number).Int64(); err != nil || exp != leaf.NotAfter.Unix() {
			t.Fatalf("expiration %v, want %d", data["expiration"], leaf.NotAfter.Unix())
		}
		if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
			t.Fatalf("ExtKeyUsage %v, want [ServerAuth ClientAuth]", leaf.ExtKeyUsage)
		}
		svid, err := x509svid.ParseRaw(slices.Concat(leaf.Raw, inter.Certificate.Raw), pkcs8(t, key))
		if err != nil || svid.ID.String() != "spiffe://cullis.local/acme/web" {
			t.Fatalf("x509svid.ParseRaw: %v", err)
		}
		if id, _, err := x509svid.ParseAndVerify([][]byte{leaf.Raw, inter.Certificate.Raw}, bundle); err != nil || id.String() != "spiffe://cullis.local/acme/web" {
			t.Fatalf("x509svid.ParseAndVerify against the bundle endpoint: %s %v", id, err)
		}
		t.Logf("cert-manager replay ttl=%s: 200, serial %v, NotAfter %s, tls.crt = leaf + %q, ca.crt = %q, warnings %q",
			ttl, data["serial_number"], leaf.NotAfter.UTC().Format(time.RFC3339), tlsCrt[1].Subject.CommonName, caCrt.Subject.CommonName, warnings)
		return warnings
	}
	if w := sign("2160h0m0s", 2160*time.Hour); len(w) != 0 {
		t.Fatalf("ttl equal to max_ttl drew warnings %q", w)
	}
	w := sign("8760h0m0s", 2160*time.Hour)
	if !slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "max_ttl") }) {
		t.Fatalf("ttl 8760h above max_ttl: no warning saying it was capped (%q)", w)
	}

	// Names a field asks for must be in the CSR.
	for _, c := range []struct {
		what          string
		cn, alt, uris string
		mustName      string
	}{
		{"alt_names not in the CSR", "", "web.example", "spiffe://cullis.local/acme/web", "web.example"},
		{"uri_sans not in the CSR", "", "", "spiffe://cullis.local/acme/other", "spiffe://cullis.local/acme/other"},
		{"common_name not in the CSR", "web", "", "spiffe://cullis.local/acme/web", "common_name"},
	} {
		code, raw := post("sign/cm-spiffe", cmBody(csr, c.cn, c.alt, c.uris, "2160h0m0s"))
		e := decodeEnvelope(t, raw)
		if code != 400 || len(e.Errors) == 0 || !strings.Contains(e.Errors[0], c.mustName) {
			t.Fatalf("%s: %d %s, want 400 naming %s", c.what, code, raw, c.mustName)
		}
		t.Logf("cert-manager replay, %s: 400 %q", c.what, e.Errors[0])
	}

	// isCA: cert-manager sends the same body to root/sign-intermediate.
	caKey := newECKey(t)
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	caCSR := csrPEMFor(t, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "acme-cm-ca"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}},
	}, caKey)
	code, raw := post("root/sign-intermediate", cmBody(caCSR, "acme-cm-ca", "", "", "2160h0m0s"))
	if code != 200 {
		t.Fatalf("cert-manager isCA request to root/sign-intermediate: %d %s", code, raw)
	}
	data, warnings, b := parsePKIAnswer(t, raw)
	if !b.Certificate.IsCA || b.Certificate.CheckSignatureFrom(org.Certificate) != nil {
		t.Fatal("isCA answer: not a CA signed by the Org CA")
	}
	tlsCrt, caCrt, err := certManagerChain(b)
	if err != nil || len(tlsCrt) != 1 || !caCrt.Equal(org.Certificate) {
		t.Fatalf("isCA answer as cert-manager links it: %v, tls.crt %d certificates", err, len(tlsCrt))
	}
	t.Logf("cert-manager isCA replay: 200, serial %v, CN %q, pathLen %d, NotAfter %s, warnings %q",
		data["serial_number"], b.Certificate.Subject.CommonName, b.Certificate.MaxPathLen, b.Certificate.NotAfter.UTC().Format(time.RFC3339), warnings)
}

// TestSPIFFE_BundleEndpoint: the bundle is go-spiffe's SPIFFE bundle of
// the Org CA, cacheable with ETag once the mount lets the headers
// through, and unchanged by an intermediate rotation.
func TestSPIFFE_BundleEndpoint(t *testing.T) {
	mount, c, org, _ := newCA(t, true)
	dir := t.TempDir()
	get := func(ifNoneMatch string) (int, http.Header, []byte) {
		t.Helper()
		h := http.Header{}
		if ifNoneMatch != "" {
			h.Set("If-None-Match", ifNoneMatch)
		}
		return httpDo(t, http.MethodGet, server.addr+"/v1/"+mount+"/bundle", "", nil, h)
	}

	code, hdr, body := get("")
	if code != 200 || !json.Valid(body) || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("GET bundle without a token: %d %s %.200s", code, hdr.Get("Content-Type"), body)
	}
	b, err := spiffebundle.Parse(trustDomain, body)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v", err)
	}
	if auth := b.X509Authorities(); len(auth) != 1 || !auth[0].Equal(org.Certificate) {
		t.Fatalf("the bundle holds %d X.509 authorities, want the Org CA only", len(auth))
	}
	if hdr.Get("ETag") != "" {
		t.Fatalf("ETag %q before the mount allows it", hdr.Get("ETag"))
	}
	t.Logf("GET %s/bundle: 200 %s, %d bytes, Cache-Control %q, one x509-svid authority (the Org CA)", mount, hdr.Get("Content-Type"), len(body), hdr.Get("Cache-Control"))

	mustVault(t, dir, "secrets", "tune", "-allowed-response-headers=ETag", "-passthrough-request-headers=If-None-Match", mount)
	code, hdr, again := get("")
	etag := hdr.Get("ETag")
	if code != 200 || etag == "" || !bytes.Equal(again, body) {
		t.Fatalf("after tuning: %d, ETag %q, same body %v", code, etag, bytes.Equal(again, body))
	}
	code, h, nm := get(etag)
	if code != http.StatusNotModified || len(nm) != 0 {
		t.Errorf("If-None-Match %s: %d with %d bytes (X-Vault-Raw-Error %q), want 304 and no body", etag, code, len(nm), h.Get("X-Vault-Raw-Error"))
	}
	if code, _, _ := get(`"not-the-etag"`); code != 200 {
		t.Fatalf("If-None-Match with another tag: %d, want 200", code)
	}
	t.Logf("after vault secrets tune: ETag %s; If-None-Match with it → %d", etag, code)

	if _, err := c.RotateIntermediate(t.Context(), client.IntermediateRequest{}); err != nil {
		t.Fatal(err)
	}
	code, hdr, after := get("")
	if code != 200 || !bytes.Equal(after, body) || hdr.Get("ETag") != etag {
		t.Fatalf("after intermediate/rotate: %d, same body %v, ETag %q (was %q)", code, bytes.Equal(after, body), hdr.Get("ETag"), etag)
	}
	code, h, _ = get(etag)
	if code != http.StatusNotModified {
		t.Errorf("If-None-Match after the rotation: %d (X-Vault-Raw-Error %q), want 304", code, h.Get("X-Vault-Raw-Error"))
	}
	t.Logf("after intermediate/rotate: same body, same ETag; If-None-Match with it → %d", code)
}

// TestSPIFFE_EveryProfileIsAnSVID: what Mastio's profiles issue is an
// X.509-SVID by go-spiffe, verifiable against the bundle endpoint, with
// Mastio's EKU unchanged.
func TestSPIFFE_EveryProfileIsAnSVID(t *testing.T) {
	ctx := t.Context()
	mount, c, _, inter := newCA(t, true)
	bundle := x509bundle.FromX509Authorities(trustDomain, bundleAuthorities(t, mount))
	pubPEM := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	signPublicKey := func(role string, k *ecdsa.PrivateKey, data map[string]any) *client.SignedCertificate {
		t.Helper()
		data["public_key"] = string(pubPEM(k))
		sec, err := server.root.Logical().WriteWithContext(ctx, mount+"/sign-public-key"+role, data)
		if err != nil {
			t.Fatalf("sign-public-key%s: %v", role, err)
		}
		p, _ := sec.Data["certificate"].(string)
		var chain []string
		for _, v := range sec.Data["ca_chain"].([]any) {
			chain = append(chain, v.(string))
		}
		return &client.SignedCertificate{Certificate: certOf(t, p), CertificatePEM: p, CAChainPEM: chain, SPIFFEID: fmt.Sprint(sec.Data["spiffe_id"])}
	}

	agentKey, principalKey, enrolKey, workloadKey := newECKey(t), newECKey(t), newECKey(t), newECKey(t)
	agent, err := c.SignCSR(ctx, []byte(csrPEMFor(t, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "acme::agent-1", Organization: []string{"acme"}},
		URIs:    []*url.URL{mustParseURL(t, "spiffe://cullis.local/acme/agent-1")},
	}, agentKey)), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	principal, err := c.SignCSR(ctx, []byte(csrPEMFor(t, &x509.CertificateRequest{
		URIs: []*url.URL{mustParseURL(t, "spiffe://cullis.local/acme/user/alice")},
	}, principalKey)), client.SignOptions{Role: "principal"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		what string
		s    *client.SignedCertificate
		key  *ecdsa.PrivateKey
		id   string
	}{
		{"agent (sign-csr)", agent, agentKey, "spiffe://cullis.local/acme/agent-1"},
		{"principal (sign-csr/principal)", principal, principalKey, "spiffe://cullis.local/acme/user/alice"},
		{"agent (sign-public-key name=agent-2)", signPublicKey("", enrolKey, map[string]any{"name": "agent-2"}), enrolKey, "spiffe://cullis.local/acme/agent-2"},
		{"principal (sign-public-key/principal spiffe_id)", signPublicKey("/principal", workloadKey, map[string]any{"spiffe_id": "spiffe://cullis.local/acme/workload/batch"}), workloadKey, "spiffe://cullis.local/acme/workload/batch"},
	}
	for _, tc := range cases {
		leaf := tc.s.Certificate
		var chainDER [][]byte
		for _, p := range tc.s.CAChainPEM {
			chainDER = append(chainDER, certOf(t, p).Raw)
		}
		if len(chainDER) != 2 || !certOf(t, tc.s.CAChainPEM[0]).Equal(inter.Certificate) {
			t.Fatalf("%s: ca_chain is not [intermediate, Org CA]", tc.what)
		}
		svid, err := x509svid.ParseRaw(slices.Concat(append([][]byte{leaf.Raw}, chainDER...)...), pkcs8(t, tc.key))
		if err != nil {
			t.Fatalf("%s: x509svid.ParseRaw: %v", tc.what, err)
		}
		id, _, err := x509svid.ParseAndVerify([][]byte{leaf.Raw, chainDER[0]}, bundle)
		if err != nil {
			t.Fatalf("%s: x509svid.ParseAndVerify against the bundle endpoint: %v", tc.what, err)
		}
		if svid.ID.String() != tc.id || id.String() != tc.id || tc.s.SPIFFEID != tc.id {
			t.Fatalf("%s: SPIFFE ID %s / %s / spiffe_id %s, want %s", tc.what, svid.ID, id, tc.s.SPIFFEID, tc.id)
		}
		if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(leaf.UnknownExtKeyUsage) != 0 {
			t.Fatalf("%s: ExtKeyUsage %v, want exactly [ClientAuth]", tc.what, leaf.ExtKeyUsage)
		}
		t.Logf("%s: %s is an X.509-SVID (ParseRaw with its key, ParseAndVerify against %s/bundle), EKU [ClientAuth]", tc.what, id, mount)
	}
}
