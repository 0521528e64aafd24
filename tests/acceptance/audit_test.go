package acceptance

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestAudit_FullSession: with a file audit device, generate, import of a
// known key, intermediate generate and rotate, 100 signings and a denied
// call are all in the log; the known key is in it in no encoding we can
// check; serials are readable with the recommended tuning; and
// `mastio-ca audit-report` tabulates it all.
func TestAudit_FullSession(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	auditPath := enableFileAudit(t, dir)

	genMount, mount := newMount(t), newMount(t)
	// The README's recommended tuning: serials readable, keys still HMAC'd.
	if err := server.root.Sys().TuneMountAllowNilWithContext(ctx, mount, api.TuneMountConfigInput{AuditNonHMACResponseKeys: &[]string{"serial_number"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(server.root, genMount).Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	c := client.New(server.root, mount)
	keyPEM, certPEM := opensslCA(t, dir, "known")
	if _, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: certPEM}); err != nil {
		t.Fatal(err)
	}
	// A refused import of the same key: its error text is logged in clear.
	other, err := client.New(server.root, genMount).CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: other.CertificatePEM, CAS: new(1)}); err == nil {
		t.Fatal("import of a key with a foreign certificate succeeded")
	}
	if _, err := c.GenerateIntermediate(ctx, client.IntermediateRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateIntermediate(ctx, client.IntermediateRequest{}); err != nil {
		t.Fatal(err)
	}
	csr := []byte(readFile(t, agentCSR(t, dir, "audited-agent")))
	serials := make([]string, 0, 100)
	for i := 0; i < 100; i++ {
		s, err := c.SignCSR(ctx, csr, client.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, s.SerialNumber)
	}
	signer := tokenWith(t, "mastio-signer.hcl", mount)
	if _, err := signer.Logical().ReadWithContext(ctx, mount+"/config"); err == nil {
		t.Fatal("the signer read config")
	}

	audit := readFile(t, auditPath)
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(audit), "\n") {
		var e struct {
			Type    string
			Request struct{ Path string }
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if e.Type == "request" {
			counts[e.Request.Path]++
		}
	}
	for path, want := range map[string]int{
		genMount + "/generate": 1, mount + "/import": 2, mount + "/intermediate/generate": 1,
		mount + "/intermediate/rotate": 1, mount + "/sign-csr": 100, mount + "/config": 1,
	} {
		if counts[path] != want {
			t.Errorf("audit log has %d requests to %s, want %d", counts[path], path, want)
		}
	}

	// The known key, in every encoding we can check.
	block, _ := pem.Decode([]byte(keyPEM))
	der := block.Bytes
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := key.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string]string{
		"base64 DER":        base64.StdEncoding.EncodeToString(der),
		"base64url DER":     base64.RawURLEncoding.EncodeToString(der),
		"hex scalar":        hex.EncodeToString(scalar),
		"HEX scalar":        strings.ToUpper(hex.EncodeToString(scalar)),
		"base64 scalar":     base64.StdEncoding.EncodeToString(scalar),
		"base64 SEC1 DER":   base64.StdEncoding.EncodeToString(sec1),
		"JSON-escaped PEM":  strings.ReplaceAll(keyPEM, "\n", `\n`),
		"JSON-escaped PEM2": strings.ReplaceAll(strings.ReplaceAll(keyPEM, "\n", `\n`), "/", `\/`),
	}
	for i, line := range strings.Split(keyPEM, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.Contains(certPEM, line) {
			needles[fmt.Sprintf("PEM line %d", i)] = strings.ReplaceAll(line, "/", `\/`)
			needles[fmt.Sprintf("PEM line %d raw", i)] = line
		}
	}
	for what, needle := range needles {
		if strings.Contains(audit, needle) {
			t.Errorf("the audit log holds the key (%s)", what)
		}
	}
	if !strings.Contains(audit, `"key_pem":"hmac-sha256:`) {
		t.Error("key_pem is not HMAC'd in the audit log")
	}
	for _, s := range serials {
		if !strings.Contains(audit, `"serial_number":"`+s+`"`) {
			t.Fatalf("serial %s is not readable in the audit log despite audit_non_hmac_response_keys", s)
		}
	}

	// The operator CLI's report: the table, and the same calls as JSON
	// Lines to count them. The mount's tune above is in the log too, as an
	// issuance policy change.
	env := []string{"HOME=" + dir}
	report := mustReport(t, env, nil, "--mount", mount, auditPath)
	t.Logf("mastio-ca audit-report (last lines):\n%s", tailLines(report, 16))
	rows := reportRows(t, mustReport(t, env, nil, "--mount", mount, "--format", "json", auditPath))
	perPath, perFlag := map[string]int{}, map[string]int{}
	for _, r := range rows {
		p := r.Path
		if strings.HasSuffix(p, "/tune") {
			p = "tune"
		}
		perPath[p]++
		for _, f := range r.Flags {
			perFlag[f]++
		}
	}
	for p, want := range map[string]int{"import": 2, "intermediate/generate": 1, "intermediate/rotate": 1, "sign-csr": 100, "config": 1, "tune": 1} {
		if perPath[p] != want {
			t.Errorf("audit-report has %d calls to %s, want %d (all: %v)", perPath[p], p, want, perPath)
		}
	}
	// The 100 signings are root's: not a signer's token.
	for f, want := range map[string]int{"key_bearing": 2, "denied": 1, "refused": 1, "ca_change": 4, "policy_change": 1, "non_signer": 100, "volume": 0} {
		if perFlag[f] != want {
			t.Errorf("audit-report flags %d calls %s, want %d", perFlag[f], f, want)
		}
	}
	for _, want := range []string{fmt.Sprintf("Summary: %d calls, ", len(rows)), serials[0], "Key-bearing calls", "Denials", "Refusals"} {
		if !strings.Contains(report, want) {
			t.Errorf("audit-report lacks %q", want)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestAudit_KeyNeverInClear imports an openssl key with a file audit device
// on, signs under it, and searches the audit log and the server log (debug
// level, plugin logs included) for any line of the key's base64 body.
func TestAudit_KeyNeverInClear(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	auditPath := enableFileAudit(t, dir)

	mount := newMount(t)
	c := client.New(server.root, mount)
	mustOpenSSL(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
	mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", "ca.key", "-days", "30", "-out", "ca.pem", "-subj", "/CN=acme CA/O=acme",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
	keyPEM := readFile(t, filepath.Join(dir, "ca.key"))
	if _, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: readFile(t, filepath.Join(dir, "ca.pem"))}); err != nil {
		t.Fatal(err)
	}
	audited, err := c.SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "audited"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertLints(t, audited.CertificatePEM)
	if _, err := c.CA(ctx); err != nil {
		t.Fatal(err)
	}

	audit := readFile(t, auditPath)
	if !strings.Contains(audit, mount+"/import") || !strings.Contains(audit, mount+"/sign-csr") {
		t.Fatalf("the audit log did not record the calls (%d bytes)", len(audit))
	}
	if !strings.Contains(audit, `"key_pem":"hmac-sha256:`) {
		t.Fatal("the audit log does not show key_pem as an HMAC")
	}
	serverLog := readFile(t, server.logPath)
	for _, line := range strings.Split(keyPEM, "\n") {
		if len(line) < 16 || strings.HasPrefix(line, "-----") {
			continue
		}
		// JSON escapes "/" and "+" differently; compare on a stretch of
		// plain alphanumerics from each key line.
		needle := longestAlnumRun(line)
		if len(needle) < 12 {
			continue
		}
		if strings.Contains(audit, needle) {
			t.Fatalf("the audit log holds key material in clear")
		}
		if strings.Contains(serverLog, needle) {
			t.Fatalf("the server log holds key material in clear")
		}
	}
}

func longestAlnumRun(s string) string {
	best, cur := "", ""
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			cur += string(r)
			if len(cur) > len(best) {
				best = cur
			}
		} else {
			cur = ""
		}
	}
	return best
}
