package acceptance

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// Revocation (issue 15): revoke, CRLs and delta CRLs per issuing CA, OCSP,
// and the URLs put into certificates, judged from outside the plugin by
// openssl verify -crl_check, openssl ocsp (through the CLI's ocsp-relay),
// Go's x509.ParseRevocationList and x/crypto/ocsp, and zlint's CRL lints.

var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// revokeAnswer is what revoke returns.
type revokeAnswer struct {
	SerialNumber   string    `json:"serial_number"`
	RevocationTime time.Time `json:"revocation_time"`
	Reason         string    `json:"reason"`
	NotAfter       time.Time `json:"not_after"`
	IssuerID       string    `json:"issuer_id"`
	AlreadyRevoked bool      `json:"already_revoked"`
	CRLNumber      int64     `json:"crl_number"`
}

// revokeWith writes mount/revoke through vc.
func revokeWith(vc *api.Client, mount string, data map[string]any) (*revokeAnswer, error) {
	s, err := vc.Logical().Write(mount+"/revoke", data)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("revoke: empty response")
	}
	raw, err := json.Marshal(s.Data)
	if err != nil {
		return nil, err
	}
	var a revokeAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("revoke: %v in %s", err, raw)
	}
	return &a, nil
}

// mustRevoke is revokeWith that fails the test on an error.
func mustRevoke(t *testing.T, vc *api.Client, mount string, data map[string]any) *revokeAnswer {
	t.Helper()
	a, err := revokeWith(vc, mount, data)
	if err != nil {
		t.Fatalf("revoke %v: %v", data, err)
	}
	return a
}

// noRedirects is an HTTP client with no token that does not follow
// redirects: a standby must answer itself (forwarding), not send us on.
var noRedirects = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// getURL fetches an absolute URL with no token.
func getURL(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, body
}

// fetchCRL GETs a DER or PEM CRL and parses it with Go's parser.
func fetchCRL(t *testing.T, u string) (*x509.RevocationList, []byte) {
	t.Helper()
	code, body := getURL(t, u)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	der := body
	if strings.HasSuffix(u, "/pem") {
		block, _ := pem.Decode(body)
		if block == nil || block.Type != "X509 CRL" {
			t.Fatalf("GET %s: not a PEM X509 CRL: %q", u, body)
		}
		der = block.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("GET %s: x509.ParseRevocationList: %v", u, err)
	}
	return crl, der
}

// crlPEM is a DER CRL in PEM, for openssl.
func crlPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// crlSerials counts each serial a CRL lists.
func crlSerials(crl *x509.RevocationList) map[string]int {
	out := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		out[e.SerialNumber.Text(16)]++
	}
	return out
}

// crlEntry finds serial in crl.
func crlEntry(crl *x509.RevocationList, serial *big.Int) (x509.RevocationListEntry, bool) {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return e, true
		}
	}
	return x509.RevocationListEntry{}, false
}

// deltaBase is a CRL's delta CRL indicator (the base CRL number) and
// whether it is marked critical; nil when it has none.
func deltaBase(t *testing.T, crl *x509.RevocationList) (*big.Int, bool) {
	t.Helper()
	for _, ext := range crl.Extensions {
		if ext.Id.Equal(oidDeltaCRLIndicator) {
			n := new(big.Int)
			if rest, err := asn1.Unmarshal(ext.Value, &n); err != nil || len(rest) != 0 {
				t.Fatalf("delta CRL indicator %x does not parse: %v", ext.Value, err)
			}
			return n, ext.Critical
		}
	}
	return nil, false
}

// keyID is the plugin's {{issuer_id}}: the CA's SKI in lowercase hex.
func keyID(c *x509.Certificate) string { return hex.EncodeToString(c.SubjectKeyId) }

// setRevocationURLs points config's crl_distribution_points, ocsp_servers
// and issuing_certificates at base (http://vault/v1/<mount>).
func setRevocationURLs(t *testing.T, vc *api.Client, mount, base string) map[string]any {
	t.Helper()
	s, err := vc.Logical().Write(mount+"/config", map[string]any{
		"crl_distribution_points": []string{base + "/issuer/{{issuer_id}}/crl"},
		"ocsp_servers":            []string{base + "/ocsp"},
		"issuing_certificates":    []string{base + "/issuer/{{issuer_id}}/der"},
		// What openssl needs to find the deltas (Freshest CRL).
		"delta_crl_distribution_points": []string{base + "/issuer/{{issuer_id}}/crl/delta"},
	})
	if err != nil {
		t.Fatalf("writing the revocation URLs: %v", err)
	}
	return s.Data
}

// signAgentPEM signs a new agent CSR made by openssl in dir and writes the
// leaf to dir/<name>.pem.
func signAgentPEM(t *testing.T, c *client.Client, dir, name string) *client.SignedCertificate {
	t.Helper()
	csr := []byte(readFile(t, agentCSR(t, dir, name)))
	s, err := c.SignCSR(t.Context(), csr, client.SignOptions{})
	if err != nil {
		t.Fatalf("signing %s: %v", name, err)
	}
	writeFile(t, filepath.Join(dir, name+".pem"), s.CertificatePEM)
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lintCRL runs zlint's CRL lints, with the same sources left out as for
// certificates (lintRegistry), and returns the error and fatal results.
func lintCRL(t *testing.T, der []byte) []string {
	bad, _ := lintCRLCount(t, der)
	return bad
}

// lintCRLCount is lintCRL that also returns how many lints applied.
func lintCRLCount(t *testing.T, der []byte) ([]string, int) {
	t.Helper()
	crl, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("zlint could not parse the CRL: %v", err)
	}
	var bad []string
	ran := 0
	for name, r := range zlint.LintRevocationListEx(crl, lintRegistry).Results {
		if r.Status != lint.NA && r.Status != lint.NE {
			ran++
		}
		if r.Status == lint.Error || r.Status == lint.Fatal {
			bad = append(bad, fmt.Sprintf("%s (%s: %s)", name, r.Status, r.Details))
		}
	}
	sort.Strings(bad)
	if ran == 0 {
		t.Fatalf("zlint ran no CRL lint")
	}
	return bad, ran
}

// ocspRequestURL is the GET URL of an OCSP request for leaf under issuer:
// base + "/ocsp/" + the standard base64 of the DER request, escaped as
// RFC 6960 appendix A.1 asks, or raw when escape is false.
func ocspRequestURL(t *testing.T, base string, der []byte, escape bool) string {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString(der)
	if escape {
		b64 = url.PathEscape(b64)
	}
	return base + "/ocsp/" + b64
}

// ocspGet asks base/ocsp/<base64> about leaf and checks the answer's
// signature against issuer (x/crypto/ocsp).
func ocspGet(t *testing.T, base string, leaf, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := ocspRequestURL(t, base, req, true)
	code, body := getURL(t, u)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	resp, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		t.Fatalf("GET %s: x/crypto/ocsp: %v", u, err)
	}
	return resp
}

var ocspStatus = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}

// startOCSPRelay runs `mastio-ca ocsp-relay` for mount against vaultAddr
// and returns its URL; it is stopped (SIGTERM) when the test ends.
func startOCSPRelay(t *testing.T, vaultAddr, mount string) string {
	t.Helper()
	port, err := freePortPair()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	var out bytes.Buffer
	cmd := exec.Command(server.cli, "ocsp-relay", "--listen", listen, "--mount", mount)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+vaultAddr)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // it has said why, if it failed
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("ocsp-relay exited with %v after SIGTERM\n%s", waitErr, out.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("ocsp-relay did not stop within 10s of SIGTERM\n%s", out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("ocsp-relay exited: %v\n%s", waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ocsp-relay not listening on %s after 20s\n%s", listen, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + listen + "/"
}

// TestRevocation_OutsideJudges: on a mount with the Org CA and the
// intermediate, with the revocation URLs configured, two agent leaves
// carry their issuer's CRL DP, OCSP URL and caIssuers URL; one is revoked
// (keyCompromise). openssl verify -crl_check (and -crl_check_all, and
// -use_deltas with a base CRL from before the revoke and the delta) refuses
// it and accepts the other; Go parses and verifies the complete and delta
// CRLs; zlint's CRL lints find nothing; openssl ocsp through the CLI's
// ocsp-relay and a plain GET read with x/crypto/ocsp say good and revoked.
func TestRevocation_OutsideJudges(t *testing.T) {
	mount, c, org, inter := newCA(t, true)
	dir := t.TempDir()
	base := server.addr + "/v1/" + mount
	interID, orgID := keyID(inter.Certificate), keyID(org.Certificate)

	cfg := setRevocationURLs(t, server.root, mount, base)
	if fmt.Sprint(cfg["crl_distribution_points"]) != "["+base+"/issuer/{{issuer_id}}/crl]" || fmt.Sprint(cfg["crl_expiry"]) != "259200" {
		t.Fatalf("config after writing the URLs: %v", cfg)
	}

	good := signAgentPEM(t, c, dir, "good")
	bad := signAgentPEM(t, c, dir, "bad")
	writeFile(t, filepath.Join(dir, "org.pem"), org.CertificatePEM)
	writeFile(t, filepath.Join(dir, "int.pem"), inter.CertificatePEM)

	// Point 4: the URLs are in the leaves, {{issuer_id}} the intermediate's.
	for _, s := range []*client.SignedCertificate{good, bad} {
		l := s.Certificate
		if want := []string{base + "/issuer/" + interID + "/crl"}; !slices.Equal(l.CRLDistributionPoints, want) {
			t.Errorf("leaf %s CRL DP %v, want %v", s.SerialNumber, l.CRLDistributionPoints, want)
		}
		if want := []string{base + "/ocsp"}; !slices.Equal(l.OCSPServer, want) {
			t.Errorf("leaf %s OCSP %v, want %v", s.SerialNumber, l.OCSPServer, want)
		}
		if want := []string{base + "/issuer/" + interID + "/der"}; !slices.Equal(l.IssuingCertificateURL, want) {
			t.Errorf("leaf %s caIssuers %v, want %v", s.SerialNumber, l.IssuingCertificateURL, want)
		}
	}
	assertLints(t, good.CertificatePEM)
	// The caIssuers URL serves the intermediate, without a token.
	if code, der := getURL(t, good.Certificate.IssuingCertificateURL[0]); code != 200 || !bytes.Equal(der, inter.Certificate.Raw) {
		t.Fatalf("GET caIssuers %s: %d, intermediate: %v", good.Certificate.IssuingCertificateURL[0], code, bytes.Equal(der, inter.Certificate.Raw))
	}
	if code, p := getURL(t, base+"/issuer/"+interID+"/pem"); code != 200 || strings.TrimSpace(string(p)) != strings.TrimSpace(inter.CertificatePEM) {
		t.Fatalf("GET issuer/%s/pem: %d %q", interID, code, p)
	}

	// The CRL at the DP before the revoke: empty, the base of later deltas.
	before, beforeDER := fetchCRL(t, good.Certificate.CRLDistributionPoints[0])
	if len(before.RevokedCertificateEntries) != 0 {
		t.Fatalf("a new intermediate's CRL lists %d entries", len(before.RevokedCertificateEntries))
	}
	writeFile(t, filepath.Join(dir, "before.crl.pem"), string(crlPEM(beforeDER)))
	out := mustOpenSSL(t, dir, "verify", "-crl_check", "-CRLfile", "before.crl.pem", "-CAfile", "org.pem", "-untrusted", "int.pem", "bad.pem")
	t.Logf("before the revoke: $ openssl verify -crl_check -CRLfile before.crl.pem -CAfile org.pem -untrusted int.pem bad.pem → %s", strings.TrimSpace(out))

	// OCSP before the revoke says good (and the answer may be cached: the
	// revoke must not leave it served).
	for i := 0; i < 2; i++ {
		if r := ocspGet(t, base, bad.Certificate, inter.Certificate); r.Status != ocsp.Good {
			t.Fatalf("OCSP before the revoke: %s", ocspStatus[r.Status])
		}
	}

	rev := mustRevoke(t, server.root, mount, map[string]any{"certificate": bad.CertificatePEM, "reason": "keyCompromise"})
	if r := ocspGet(t, base, bad.Certificate, inter.Certificate); r.Status != ocsp.Revoked {
		t.Errorf("OCSP right after the revoke: %s, want revoked", ocspStatus[r.Status])
	}
	if rev.AlreadyRevoked || rev.Reason != "keyCompromise" || rev.IssuerID != interID || rev.CRLNumber <= before.Number.Int64() ||
		!rev.NotAfter.Equal(bad.Certificate.NotAfter) || time.Since(rev.RevocationTime) > time.Minute {
		t.Fatalf("revoke answered %+v (CRL before: #%s, intermediate %s)", rev, before.Number, interID)
	}
	if n := serialOf(rev.SerialNumber); n == nil || n.Cmp(bad.Certificate.SerialNumber) != 0 {
		t.Fatalf("revoke answered serial %q for %s", rev.SerialNumber, bad.SerialNumber)
	}
	// Idempotent: the first time and reason stay.
	again := mustRevoke(t, server.root, mount, map[string]any{"serial_number": bad.SerialNumber, "issuer": "intermediate-ca",
		"not_after": bad.Certificate.NotAfter.Format(time.RFC3339), "reason": "superseded"})
	if !again.AlreadyRevoked || again.Reason != "keyCompromise" || !again.RevocationTime.Equal(rev.RevocationTime) || again.CRLNumber != rev.CRLNumber {
		t.Fatalf("second revoke answered %+v, want the first (%+v) with already_revoked", again, rev)
	}
	t.Logf("revoke certificate=@bad.pem reason=keyCompromise → serial %s, issuer_id %s, crl_number %d; again by serial (reason superseded) → already_revoked=%v, reason %s",
		rev.SerialNumber, rev.IssuerID, rev.CRLNumber, again.AlreadyRevoked, again.Reason)

	// The CRLs, by every name.
	crl, crlDER := fetchCRL(t, base+"/issuer/"+interID+"/crl")
	for _, p := range []string{"crl", "crl/pem", "issuer/intermediate-ca/crl", "issuer/" + interID + "/crl/pem"} {
		if _, der := fetchCRL(t, base+"/"+p); !bytes.Equal(der, crlDER) {
			t.Errorf("%s is not the same CRL as issuer/%s/crl", p, interID)
		}
	}
	delta, deltaDER := fetchCRL(t, base+"/issuer/"+interID+"/crl/delta")
	if _, der := fetchCRL(t, base+"/crl/delta/pem"); !bytes.Equal(der, deltaDER) {
		t.Errorf("crl/delta/pem is not issuer/%s/crl/delta", interID)
	}
	orgCRL, orgCRLDER := fetchCRL(t, base+"/issuer/org-ca/crl")
	if _, der := fetchCRL(t, base+"/issuer/"+orgID+"/crl/pem"); !bytes.Equal(der, orgCRLDER) {
		t.Errorf("issuer/%s/crl/pem is not issuer/org-ca/crl", orgID)
	}
	orgDelta, orgDeltaDER := fetchCRL(t, base+"/issuer/org-ca/crl/delta")

	// Served without a token, with their media types; revoke needs one.
	for p, want := range map[string]string{"crl": "application/pkix-crl", "crl/pem": "application/x-pem-file", "issuer/org-ca/crl/delta": "application/pkix-crl",
		"issuer/" + interID + "/der": "application/pkix-cert", "issuer/intermediate-ca/pem": "application/x-pem-file"} {
		resp, err := noRedirects.Get(base + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want {
			t.Errorf("GET %s without a token: %d, Content-Type %q; want 200, %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}
	if resp, err := http.Post(base+"/revoke", "application/json", strings.NewReader(`{"certificate":`+fmt.Sprintf("%q", good.CertificatePEM)+`}`)); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without a token: %d, want 403", resp.StatusCode)
	}

	// Go: signatures, numbers, AKI, entries, delta indicator.
	for _, x := range []struct {
		name   string
		signer *x509.Certificate
		list   *x509.RevocationList
	}{
		{"intermediate complete", inter.Certificate, crl}, {"intermediate delta", inter.Certificate, delta},
		{"Org CA complete", org.Certificate, orgCRL}, {"Org CA delta", org.Certificate, orgDelta},
	} {
		if err := x.list.CheckSignatureFrom(x.signer); err != nil {
			t.Errorf("%s CRL: CheckSignatureFrom its CA: %v", x.name, err)
		}
		if !bytes.Equal(x.list.AuthorityKeyId, x.signer.SubjectKeyId) || !bytes.Equal(x.list.RawIssuer, x.signer.RawSubject) {
			t.Errorf("%s CRL: AKI %x issuer %s, want the CA's SKI %x and subject", x.name, x.list.AuthorityKeyId, x.list.Issuer, x.signer.SubjectKeyId)
		}
		if x.list.Number == nil || x.list.Number.Sign() <= 0 {
			t.Errorf("%s CRL: number %v", x.name, x.list.Number)
		}
		if v := x.list.NextUpdate.Sub(x.list.ThisUpdate); v != 72*time.Hour || time.Since(x.list.ThisUpdate) > 5*time.Minute {
			t.Errorf("%s CRL: thisUpdate %s nextUpdate %s, want 72h from about now", x.name, x.list.ThisUpdate, x.list.NextUpdate)
		}
	}
	if err := crl.CheckSignatureFrom(org.Certificate); err == nil {
		t.Errorf("the intermediate's CRL verifies under the Org CA")
	}
	if crl.Number.Int64() != rev.CRLNumber {
		t.Errorf("the CRL is #%s, revoke answered crl_number %d", crl.Number, rev.CRLNumber)
	}
	e, ok := crlEntry(crl, bad.Certificate.SerialNumber)
	if !ok || e.ReasonCode != ocsp.KeyCompromise || !e.RevocationTime.Equal(rev.RevocationTime) {
		t.Errorf("complete CRL entry for %s: %+v (listed %v), want keyCompromise at %s", bad.SerialNumber, e, ok, rev.RevocationTime)
	}
	if _, ok := crlEntry(crl, good.Certificate.SerialNumber); ok || len(crl.RevokedCertificateEntries) != 1 {
		t.Errorf("complete CRL lists %d entries (the good leaf: %v), want only the revoked one", len(crl.RevokedCertificateEntries), ok)
	}
	for _, x := range []struct {
		name            string
		complete, delta *x509.RevocationList
	}{{"intermediate", crl, delta}, {"Org CA", orgCRL, orgDelta}} {
		b, critical := deltaBase(t, x.delta)
		if b == nil || !critical {
			t.Errorf("%s delta CRL: delta CRL indicator %v, critical %v; want a critical one", x.name, b, critical)
			continue
		}
		// Issued together, so the same number (RFC 5280 5.2.3).
		if x.delta.Number.Cmp(x.complete.Number) != 0 || b.Cmp(x.complete.Number) > 0 {
			t.Errorf("%s delta CRL #%s with base #%s beside complete #%s: want the complete's number and a base not above it", x.name, x.delta.Number, b, x.complete.Number)
		}
		if b, _ := deltaBase(t, x.complete); b != nil {
			t.Errorf("%s complete CRL carries a delta CRL indicator (%s)", x.name, b)
		}
	}
	db, _ := deltaBase(t, delta)
	if db.Cmp(before.Number) != 0 {
		t.Errorf("intermediate delta's base is #%s, want #%s (the CRL before the revoke)", db, before.Number)
	}
	if e, ok := crlEntry(delta, bad.Certificate.SerialNumber); !ok || e.ReasonCode != ocsp.KeyCompromise || len(delta.RevokedCertificateEntries) != 1 {
		t.Errorf("delta CRL (base #%s) should list exactly the revoked leaf, keyCompromise: %+v", db, delta.RevokedCertificateEntries)
	}
	if len(orgCRL.RevokedCertificateEntries) != 0 {
		t.Errorf("the Org CA's CRL lists %d entries, want none", len(orgCRL.RevokedCertificateEntries))
	}
	t.Logf("Go x509: intermediate CRL #%s (%d bytes, %d entry, AKI %x) and delta #%s (base #%s, critical indicator) verify under the intermediate; Org CA CRL #%s and delta #%s under the Org CA",
		crl.Number, len(crlDER), len(crl.RevokedCertificateEntries), crl.AuthorityKeyId, delta.Number, db, orgCRL.Number, orgDelta.Number)

	// zlint's CRL lints.
	_, ran := lintCRLCount(t, crlDER)
	t.Logf("zlint: %d CRL lints applied to the intermediate's CRL (sources as for certificates: RFC 5280 and community; CA/B Forum and others left out)", ran)
	for name, der := range map[string][]byte{"intermediate CRL": crlDER, "intermediate delta CRL": deltaDER, "Org CA CRL": orgCRLDER, "Org CA delta CRL": orgDeltaDER, "empty CRL": beforeDER} {
		if bad := lintCRL(t, der); len(bad) > 0 {
			t.Errorf("zlint on the %s: %s", name, strings.Join(bad, "; "))
		}
	}

	// openssl verify -crl_check.
	writeFile(t, filepath.Join(dir, "int.crl.pem"), string(crlPEM(crlDER)))
	writeFile(t, filepath.Join(dir, "delta.crl.pem"), string(crlPEM(deltaDER)))
	writeFile(t, filepath.Join(dir, "both.crl.pem"), string(crlPEM(crlDER))+string(crlPEM(orgCRLDER)))
	for _, v := range []struct {
		args []string
	}{
		{[]string{"-crl_check", "-CRLfile", "int.crl.pem"}},
		{[]string{"-crl_check_all", "-CRLfile", "both.crl.pem"}},
	} {
		for _, leaf := range []string{"good.pem", "bad.pem"} {
			args := append(append([]string{"verify"}, v.args...), "-CAfile", "org.pem", "-untrusted", "int.pem", leaf)
			out, err := opensslMayFail(dir, args...)
			shown := "$ openssl " + strings.Join(args, " ")
			switch leaf {
			case "good.pem":
				if err != nil || !strings.Contains(out, "good.pem: OK") {
					t.Errorf("%s: %v\n%s", shown, err, out)
				}
			default:
				if err == nil || !strings.Contains(out, "certificate revoked") {
					t.Errorf("%s accepted the revoked leaf (or failed otherwise): %v\n%s", shown, err, out)
				}
			}
			t.Logf("%s → exit %v:\n%s", shown, exitCode(err), strings.TrimSpace(out))
		}
	}
	// -crl_check_all without the Org CA's CRL cannot check the intermediate.
	if out, err := opensslMayFail(dir, "verify", "-crl_check_all", "-CRLfile", "int.crl.pem", "-CAfile", "org.pem", "-untrusted", "int.pem", "good.pem"); err == nil || !strings.Contains(out, "unable to get certificate CRL") {
		t.Errorf("openssl verify -crl_check_all with only the intermediate's CRL: %v\n%s", err, out)
	}

	// Another CA, for the negative checks.
	mustOpenSSL(t, dir, "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "other.key",
		"-out", "other.pem", "-days", "2", "-subj", "/CN=other CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	// OCSP through the relay, judged by openssl ocsp.
	relay := startOCSPRelay(t, server.addr, mount)
	for _, leaf := range []string{"good.pem", "bad.pem"} {
		args := []string{"ocsp", "-issuer", "int.pem", "-cert", leaf, "-url", relay, "-CAfile", "org.pem", "-verify_other", "int.pem", "-no_nonce",
			"-respout", strings.TrimSuffix(leaf, ".pem") + ".ocsp.der"}
		out, err := opensslMayFail(dir, args...)
		t.Logf("$ openssl %s →\n%s", strings.Join(args, " "), strings.TrimSpace(out))
		if err != nil || !strings.Contains(out, "Response verify OK") {
			t.Errorf("openssl ocsp for %s: %v\n%s", leaf, err, out)
		}
		switch leaf {
		case "good.pem":
			if !strings.Contains(out, "good.pem: good") {
				t.Errorf("openssl ocsp for the good leaf: %s", out)
			}
		default:
			if !strings.Contains(out, "bad.pem: revoked") || !strings.Contains(out, "Reason: keyCompromise") {
				t.Errorf("openssl ocsp for the revoked leaf: %s", out)
			}
		}
	}
	// With a nonce (openssl's default): answers are precomputable and carry
	// none; openssl warns and still accepts them.
	nonceArgs := []string{"ocsp", "-issuer", "int.pem", "-cert", "bad.pem", "-url", relay, "-CAfile", "org.pem", "-verify_other", "int.pem"}
	out, err := opensslMayFail(dir, nonceArgs...)
	t.Logf("$ openssl %s → exit %d:\n%s", strings.Join(nonceArgs, " "), exitCode(err), strings.TrimSpace(out))
	if err != nil || !strings.Contains(out, "bad.pem: revoked") {
		t.Errorf("openssl ocsp with a nonce: %v\n%s", err, out)
	}
	// openssl ocsp with -issuer trusts an answer signed by that issuer
	// outright when the chain does not verify (apps/ocsp.c retries with
	// OCSP_TRUSTOTHER), so judge the chain on the saved answer, with no
	// -issuer: it verifies through the intermediate to the Org CA, and not
	// under an unrelated CA.
	for _, anchor := range []string{"org.pem", "other.pem"} {
		args := []string{"ocsp", "-respin", "bad.ocsp.der", "-CAfile", anchor, "-verify_other", "int.pem"}
		out, err := opensslMayFail(dir, args...)
		t.Logf("$ openssl %s → exit %d:\n%s", strings.Join(args, " "), exitCode(err), strings.TrimSpace(out))
		if ok := err == nil && strings.Contains(out, "Response verify OK"); ok != (anchor == "org.pem") {
			t.Errorf("openssl ocsp -respin under %s: verified %v", anchor, ok)
		}
	}

	// OCSP over plain GET, read with x/crypto/ocsp (signature checked
	// against the intermediate).
	for _, x := range []struct {
		s    *client.SignedCertificate
		want int
	}{{good, ocsp.Good}, {bad, ocsp.Revoked}} {
		r := ocspGet(t, base, x.s.Certificate, inter.Certificate)
		if r.Status != x.want || r.SerialNumber.Cmp(x.s.Certificate.SerialNumber) != 0 {
			t.Errorf("OCSP GET for %s: %s, want %s", x.s.SerialNumber, ocspStatus[r.Status], ocspStatus[x.want])
		}
		if x.want == ocsp.Revoked && (r.RevocationReason != ocsp.KeyCompromise || !r.RevokedAt.Equal(rev.RevocationTime)) {
			t.Errorf("OCSP GET for the revoked leaf: reason %d at %s, want keyCompromise at %s", r.RevocationReason, r.RevokedAt, rev.RevocationTime)
		}
		if r.NextUpdate.Before(time.Now()) || r.ThisUpdate.After(time.Now().Add(time.Minute)) {
			t.Errorf("OCSP GET: thisUpdate %s nextUpdate %s", r.ThisUpdate, r.NextUpdate)
		}
		t.Logf("GET %s/ocsp/<base64> for %s → %s (thisUpdate %s, nextUpdate %s, reason %d), signed by the intermediate",
			"/v1/"+mount, x.s.SerialNumber, ocspStatus[r.Status], r.ThisUpdate.Format(time.RFC3339), r.NextUpdate.Format(time.RFC3339), r.RevocationReason)
	}
	// A CertID hashed with SHA-256 is answered in kind.
	req256, err := ocsp.CreateRequest(bad.Certificate, inter.Certificate, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := getURL(t, ocspRequestURL(t, base, req256, true)); code != 200 {
		t.Errorf("OCSP GET with a SHA-256 CertID: %d", code)
	} else if r, err := ocsp.ParseResponseForCert(body, bad.Certificate, inter.Certificate); err != nil || r.Status != ocsp.Revoked || r.IssuerHash != crypto.SHA256 {
		t.Errorf("OCSP GET with a SHA-256 CertID: %v %+v", err, r)
	}
	// Unescaped base64 (as some clients send it) works too, unless it
	// holds "//", which the next check covers.
	req, _ := ocsp.CreateRequest(bad.Certificate, inter.Certificate, nil)
	if b64 := base64.StdEncoding.EncodeToString(req); !strings.Contains(b64, "//") {
		code, body := getURL(t, ocspRequestURL(t, base, req, false))
		if r, err := ocsp.ParseResponseForCert(body, bad.Certificate, inter.Certificate); code != 200 || err != nil || r.Status != ocsp.Revoked {
			t.Errorf("OCSP GET, base64 not escaped: %d %v", code, err)
		}
	}
	// A certificate of another CA: unknown.
	other := parsePEMCert(t, readFile(t, filepath.Join(dir, "other.pem")))
	foreign := &x509.Certificate{SerialNumber: big.NewInt(4242), RawIssuer: other.RawSubject}
	freq, err := ocsp.CreateRequest(foreign, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := getURL(t, ocspRequestURL(t, base, freq, true))
	if r, err := ocsp.ParseResponse(body, inter.Certificate); code != 200 || err != nil || r.Status != ocsp.Unknown {
		t.Errorf("OCSP GET for another CA's certificate: %d %v %+v, want unknown signed by the intermediate", code, err, r)
	} else {
		t.Logf("OCSP GET for a certificate of another CA → %s", ocspStatus[r.Status])
	}
}

// TestRevocation_OCSPBase64WithSlashes: a GET OCSP request whose standard
// base64 holds "//" (about 1 request in 40 with a random serial) reaches
// the plugin and is answered, both through Vault directly (escaped as RFC
// 6960 A.1 asks) and through the ocsp-relay.
func TestRevocation_OCSPBase64WithSlashes(t *testing.T) {
	mount, _, _, inter := newCA(t, true)
	base := server.addr + "/v1/" + mount
	// Requests for serials this mount might have issued: the answer is
	// good (no certificate store) and names the serial.
	var der []byte
	var serial *big.Int
	for i := 0; i < 100000 && der == nil; i++ {
		raw, _ := hex.DecodeString(randomHex(16))
		serial = new(big.Int).SetBytes(raw)
		leaf := &x509.Certificate{SerialNumber: serial, RawIssuer: inter.Certificate.RawSubject}
		req, err := ocsp.CreateRequest(leaf, inter.Certificate, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(base64.StdEncoding.EncodeToString(req), "//") {
			der = req
		}
	}
	if der == nil {
		t.Fatal("no request with // in its base64")
	}
	check := func(how string, code int, body []byte) {
		t.Helper()
		r, err := ocsp.ParseResponse(body, inter.Certificate)
		if code != 200 || err != nil || r.SerialNumber.Cmp(serial) != 0 || r.Status != ocsp.Good {
			t.Errorf("%s, base64 %s: %d, %v, %+v; want good for serial %x", how, base64.StdEncoding.EncodeToString(der), code, err, r, serial)
			return
		}
		t.Logf("%s, base64 with //: good for serial %x", how, serial)
	}
	code, body := getURL(t, ocspRequestURL(t, base, der, true))
	check("GET /v1/"+mount+"/ocsp/<escaped base64>", code, body)

	relay := startOCSPRelay(t, server.addr, mount)
	resp, err := http.Post(relay, "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	check("POST to the ocsp-relay", resp.StatusCode, body)
	raw := base64.StdEncoding.EncodeToString(der)
	code, body = getURL(t, relay+url.PathEscape(raw))
	check("GET to the ocsp-relay, escaped", code, body)
	code, body = getURL(t, relay+raw)
	check("GET to the ocsp-relay, not escaped", code, body)
	// Straight to Vault, not escaped: Vault's router cleans "//" out of
	// the path (RFC 6960 A.1 asks for the URL encoding; shown, not judged).
	code, body = getURL(t, base+"/ocsp/"+raw)
	if r, err := ocsp.ParseResponse(body, inter.Certificate); code == 200 && err == nil && r.SerialNumber.Cmp(serial) == 0 {
		t.Logf("GET /v1/%s/ocsp/<base64 with //, not escaped>: answered for the serial", mount)
	} else {
		t.Logf("GET /v1/%s/ocsp/<base64 with //, not escaped>: %d (%v): clients must escape, as RFC 6960 A.1 says", mount, code, err)
	}
}

// TestRevocation_TidyDropsExpired: a revocation whose not_after has passed
// leaves the CRL at tidy, which moves the CRL number on; an unexpired one
// stays. (A leaf lives at least a minute, so the short one is revoked by
// serial with a not_after 3 s away, as a caller that kept only the serial
// and the expiry would.)
func TestRevocation_TidyDropsExpired(t *testing.T) {
	mount, c, _, inter := newCA(t, true)
	base := server.addr + "/v1/" + mount
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "short")))
	leaves := signBatch(t, c, csr, 2)
	short, long := leaves[0], leaves[1]
	shortUntil := time.Now().Add(3 * time.Second).Truncate(time.Second)
	r1 := mustRevoke(t, server.root, mount, map[string]any{"serial_number": short.SerialNumber, "issuer": keyID(inter.Certificate), "not_after": shortUntil.Format(time.RFC3339)})
	if !r1.NotAfter.Equal(shortUntil) {
		t.Fatalf("revoke by serial answered not_after %s, want %s", r1.NotAfter, shortUntil)
	}
	r2 := mustRevoke(t, server.root, mount, map[string]any{"certificate": long.CertificatePEM})
	if crl, _ := fetchCRL(t, base+"/crl"); len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("the CRL lists %d entries, want 2", len(crl.RevokedCertificateEntries))
	}
	if s, err := server.root.Logical().Write(mount+"/tidy", nil); err != nil || fmt.Sprint(s.Data["revocations_removed"]) != "0" {
		t.Fatalf("tidy before anything expired: %v %v", err, s)
	}
	time.Sleep(time.Until(shortUntil) + 1100*time.Millisecond)
	// The first tidy after the expiry issues a CRL that still lists it: an
	// entry stays on one CRL issued after its certificate expired (RFC 5280
	// 3.3). The next tidy drops it.
	s, err := server.root.Logical().Write(mount+"/tidy", nil)
	if err != nil || fmt.Sprint(s.Data["revocations_removed"]) != "0" {
		t.Fatalf("the first tidy after the expiry: %v %v, want nothing removed yet", err, s)
	}
	if once, _ := fetchCRL(t, base+"/crl"); !once.ThisUpdate.After(shortUntil.Add(-time.Second)) {
		t.Errorf("the CRL after the expiry has thisUpdate %s", once.ThisUpdate)
	} else if _, listed := crlEntry(once, short.Certificate.SerialNumber); !listed {
		t.Errorf("the first CRL issued after the expiry does not list the expired leaf")
	}
	s, err = server.root.Logical().Write(mount+"/tidy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Data["revocations_removed"]) != "1" {
		t.Errorf("tidy answered %v, want revocations_removed 1", s.Data)
	}
	crl, der := fetchCRL(t, base+"/crl")
	if err := crl.CheckSignatureFrom(inter.Certificate); err != nil {
		t.Fatal(err)
	}
	_, shortListed := crlEntry(crl, short.Certificate.SerialNumber)
	_, longListed := crlEntry(crl, long.Certificate.SerialNumber)
	if shortListed || !longListed || crl.Number.Int64() <= r2.CRLNumber {
		t.Errorf("after tidy the CRL #%s lists the expired leaf %v, the live one %v; want only the live one and a number above %d", crl.Number, shortListed, longListed, r2.CRLNumber)
	}
	if bad := lintCRL(t, der); len(bad) > 0 {
		t.Errorf("zlint on the tidied CRL: %v", bad)
	}
	s, err = server.root.Logical().Write(mount+"/tidy", nil)
	if err != nil || fmt.Sprint(s.Data["revocations_removed"]) != "0" {
		t.Errorf("a second tidy: %v %v, want nothing removed", err, s)
	}
	t.Logf("tidy after the revocation's not_after passed: removed 1; CRL #%s lists only the live revoked leaf", crl.Number)
}

func parsePEMCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		t.Fatalf("not PEM: %q", p)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serialOf reads a serial as the plugin prints it (hex, ':' separated).
func serialOf(s string) *big.Int {
	n, ok := new(big.Int).SetString(strings.ReplaceAll(s, ":", ""), 16)
	if !ok {
		return nil
	}
	return n
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return -1
}

// TestRevocation_RotatedOutIntermediate: after a rotation with grace, a
// leaf of the rotated-out intermediate is revoked (by certificate, and
// another by serial + issuer key id + not_after); the old intermediate's
// CRL (issuer/<old key id>/crl) lists both and verifies under the old
// intermediate, openssl refuses the leaf with it, OCSP answers revoked
// signed by the old intermediate; the new intermediate's CRL lists
// neither. The new intermediate, issued after the URLs were set, carries
// the Org CA's CRL DP. The mount's own CAs cannot be revoked.
func TestRevocation_RotatedOutIntermediate(t *testing.T) {
	ctx := t.Context()
	mount, c, org, old := newCA(t, true)
	dir := t.TempDir()
	base := server.addr + "/v1/" + mount
	setRevocationURLs(t, server.root, mount, base)
	oldID, orgID := keyID(old.Certificate), keyID(org.Certificate)

	leaf1 := signAgentPEM(t, c, dir, "old1")
	leaf2 := signAgentPEM(t, c, dir, "old2")
	if r := ocspGet(t, base, leaf1.Certificate, old.Certificate); r.Status != ocsp.Good {
		t.Fatalf("OCSP before the rotation: %s", ocspStatus[r.Status])
	}
	next, err := c.RotateIntermediate(ctx, client.IntermediateRequest{GracePeriod: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if next.Previous == nil || !next.Previous.Equal(old.Certificate) {
		t.Fatalf("after the rotation the previous intermediate is %v", next.Previous)
	}
	newID := keyID(next.Certificate)
	if want := []string{base + "/issuer/" + orgID + "/crl"}; !slices.Equal(next.Certificate.CRLDistributionPoints, want) {
		t.Errorf("the new intermediate's CRL DP %v, want %v", next.Certificate.CRLDistributionPoints, want)
	}
	fresh := signAgentPEM(t, c, dir, "new")
	if fresh.Certificate.CheckSignatureFrom(next.Certificate) != nil {
		t.Fatal("after the rotation leaves are not signed by the new intermediate")
	}
	writeFile(t, filepath.Join(dir, "org.pem"), org.CertificatePEM)
	writeFile(t, filepath.Join(dir, "old-int.pem"), old.CertificatePEM)

	r1 := mustRevoke(t, server.root, mount, map[string]any{"certificate": leaf1.CertificatePEM, "reason": "keyCompromise"})
	r2 := mustRevoke(t, server.root, mount, map[string]any{"serial_number": leaf2.SerialNumber, "issuer": oldID,
		"not_after": leaf2.Certificate.NotAfter.Format(time.RFC3339), "reason": "superseded"})
	for _, r := range []*revokeAnswer{r1, r2} {
		if r.IssuerID != oldID || r.AlreadyRevoked {
			t.Fatalf("revoking a leaf of the rotated-out intermediate: %+v, want issuer_id %s", r, oldID)
		}
	}
	if r2.CRLNumber <= r1.CRLNumber {
		t.Errorf("CRL numbers %d then %d", r1.CRLNumber, r2.CRLNumber)
	}

	oldCRL, oldDER := fetchCRL(t, base+"/issuer/"+oldID+"/crl")
	if err := oldCRL.CheckSignatureFrom(old.Certificate); err != nil {
		t.Errorf("the old intermediate's CRL does not verify under it: %v", err)
	}
	if !bytes.Equal(oldCRL.AuthorityKeyId, old.Certificate.SubjectKeyId) || oldCRL.Number.Int64() != r2.CRLNumber {
		t.Errorf("the old intermediate's CRL: AKI %x (want %x), #%s (want %d)", oldCRL.AuthorityKeyId, old.Certificate.SubjectKeyId, oldCRL.Number, r2.CRLNumber)
	}
	for _, x := range []struct {
		s      *client.SignedCertificate
		reason int
	}{{leaf1, ocsp.KeyCompromise}, {leaf2, ocsp.Superseded}} {
		if e, ok := crlEntry(oldCRL, x.s.Certificate.SerialNumber); !ok || e.ReasonCode != x.reason {
			t.Errorf("the old intermediate's CRL entry for %s: %+v (listed %v), want reason %d", x.s.SerialNumber, e, ok, x.reason)
		}
	}
	if bad := lintCRL(t, oldDER); len(bad) > 0 {
		t.Errorf("zlint on the old intermediate's CRL: %s", strings.Join(bad, "; "))
	}
	oldDelta, _ := fetchCRL(t, base+"/issuer/"+oldID+"/crl/delta")
	if err := oldDelta.CheckSignatureFrom(old.Certificate); err != nil {
		t.Errorf("the old intermediate's delta CRL does not verify under it: %v", err)
	}

	for _, p := range []string{"crl", "issuer/intermediate-ca/crl", "issuer/" + newID + "/crl"} {
		newCRL, _ := fetchCRL(t, base+"/"+p)
		if err := newCRL.CheckSignatureFrom(next.Certificate); err != nil {
			t.Errorf("%s does not verify under the new intermediate: %v", p, err)
		}
		if len(newCRL.RevokedCertificateEntries) != 0 {
			t.Errorf("%s (the new intermediate's) lists %d entries, want none", p, len(newCRL.RevokedCertificateEntries))
		}
	}

	writeFile(t, filepath.Join(dir, "old.crl.pem"), string(crlPEM(oldDER)))
	args := []string{"verify", "-crl_check", "-CRLfile", "old.crl.pem", "-CAfile", "org.pem", "-untrusted", "old-int.pem", "old1.pem"}
	out, err := opensslMayFail(dir, args...)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of a revoked leaf of the old intermediate: %v\n%s", err, out)
	}
	t.Logf("$ openssl %s → exit %d:\n%s", strings.Join(args, " "), exitCode(err), strings.TrimSpace(out))

	for _, x := range []struct {
		s    *client.SignedCertificate
		want int
	}{{leaf1, ocsp.Revoked}, {leaf2, ocsp.Revoked}} {
		if r := ocspGet(t, base, x.s.Certificate, old.Certificate); r.Status != x.want {
			t.Errorf("OCSP for %s under the old intermediate: %s", x.s.SerialNumber, ocspStatus[r.Status])
		}
	}
	if r := ocspGet(t, base, fresh.Certificate, next.Certificate); r.Status != ocsp.Good {
		t.Errorf("OCSP for the new leaf: %s", ocspStatus[r.Status])
	}

	// The CAs the mount signs with are not revoked through revoke, by PEM
	// or by serial; the rotated-out one is, onto the Org CA's CRL (after a
	// compromise of its key).
	for name, p := range map[string]string{"the new intermediate": next.CertificatePEM, "the Org CA": org.CertificatePEM} {
		_, err := revokeWith(server.root, mount, map[string]any{"certificate": p})
		var re *api.ResponseError
		if !asResponseError(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "own CAs") {
			t.Errorf("revoking %s: %v, want a 400 naming the mount's own CAs", name, err)
		}
	}
	_, err = revokeWith(server.root, mount, map[string]any{"serial_number": fmt.Sprintf("%x", next.Certificate.SerialNumber), "issuer": "org-ca", "not_after": next.Certificate.NotAfter.Format(time.RFC3339)})
	var re *api.ResponseError
	if !asResponseError(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "own CAs") {
		t.Errorf("revoking the new intermediate by serial: %v, want a 400 naming the mount's own CAs", err)
	}
	mustRevoke(t, server.root, mount, map[string]any{"certificate": old.CertificatePEM, "reason": "cACompromise"})
	orgCRL, _ := fetchCRL(t, base+"/issuer/org-ca/crl")
	if e, listed := crlEntry(orgCRL, old.Certificate.SerialNumber); !listed || e.ReasonCode != ocsp.CACompromise {
		t.Errorf("the Org CA's CRL does not list the rotated-out intermediate as cACompromise")
	}
	t.Logf("rotated-out intermediate %s: CRL #%s lists %d entries, verifies under it; new intermediate %s CRL empty", oldID, oldCRL.Number, len(oldCRL.RevokedCertificateEntries), newID)
}

func asResponseError(err error, target **api.ResponseError) bool {
	re, ok := err.(*api.ResponseError)
	if ok {
		*target = re
	}
	return ok
}

var oidFreshestCRL = asn1.ObjectIdentifier{2, 5, 29, 46}

// TestRevocation_DeltaCRLUsableByOpenSSL: a relying party holding the
// complete CRL published before a revoke, and the delta published after,
// must refuse the revoked leaf when it uses deltas (openssl verify
// -use_deltas). OpenSSL consults a delta CRL only when the certificate or
// the base CRL carries a Freshest CRL extension (RFC 5280 4.2.1.15,
// 5.2.6; x509_vfy.c get_delta_sk: EXFLAG_FRESHEST), so the complete CRL
// must point at its delta.
func TestRevocation_DeltaCRLUsableByOpenSSL(t *testing.T) {
	mount, c, org, inter := newCA(t, true)
	dir := t.TempDir()
	base := server.addr + "/v1/" + mount
	setRevocationURLs(t, server.root, mount, base)
	leaf := signAgentPEM(t, c, dir, "leaf")
	writeFile(t, filepath.Join(dir, "org.pem"), org.CertificatePEM)
	writeFile(t, filepath.Join(dir, "int.pem"), inter.CertificatePEM)
	complete, completeDER := fetchCRL(t, base+"/crl")
	mustRevoke(t, server.root, mount, map[string]any{"certificate": leaf.CertificatePEM, "reason": "keyCompromise"})
	delta, deltaDER := fetchCRL(t, base+"/crl/delta")
	if b, _ := deltaBase(t, delta); b == nil || b.Cmp(complete.Number) != 0 {
		t.Fatalf("delta #%s has base %v, want #%s", delta.Number, b, complete.Number)
	}
	if _, ok := crlEntry(delta, leaf.Certificate.SerialNumber); !ok {
		t.Fatal("the delta does not list the revoked leaf")
	}

	hasFreshest := func(exts []pkix.Extension) bool {
		return slices.ContainsFunc(exts, func(e pkix.Extension) bool { return e.Id.Equal(oidFreshestCRL) })
	}
	if !hasFreshest(complete.Extensions) && !hasFreshest(leaf.Certificate.Extensions) {
		t.Errorf("neither the complete CRL #%s nor the leaf carries a Freshest CRL extension (2.5.29.46) naming %s/issuer/%s/crl/delta: relying parties cannot find the delta, and openssl ignores it",
			complete.Number, base, keyID(inter.Certificate))
	}
	writeFile(t, filepath.Join(dir, "base+delta.crl.pem"), string(crlPEM(completeDER))+string(crlPEM(deltaDER)))
	args := []string{"verify", "-crl_check", "-use_deltas", "-CRLfile", "base+delta.crl.pem", "-CAfile", "org.pem", "-untrusted", "int.pem", "leaf.pem"}
	out, err := opensslMayFail(dir, args...)
	t.Logf("$ openssl %s → exit %d:\n%s", strings.Join(args, " "), exitCode(err), strings.TrimSpace(out))
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -use_deltas with the base CRL #%s and its delta #%s accepted a leaf the delta revokes", complete.Number, delta.Number)
	}
}
