package acceptance

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

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

// reportRow is one call as `mastio-ca audit-report --format json` prints it
// (one JSON object a line).
type reportRow struct {
	Time          string   `json:"time"`
	RequestID     string   `json:"request_id"`
	DisplayName   string   `json:"display_name"`
	Policies      []string `json:"policies"`
	EntityID      string   `json:"entity_id"`
	TokenType     string   `json:"token_type"`
	RemoteAddress string   `json:"remote_address"`
	Operation     string   `json:"operation"`
	Path          string   `json:"path"`
	Role          string   `json:"role"`
	Outcome       string   `json:"outcome"`
	Status        int      `json:"status"`
	Message       string   `json:"message"`
	Certificates  []struct {
		Serial   string `json:"serial"`
		SPIFFEID string `json:"spiffe_id"`
		NotAfter string `json:"not_after"`
	} `json:"certificates"`
	Flags []string `json:"flags"`
}

// reportRowKeys are the keys every JSON row carries.
var reportRowKeys = []string{"time", "request_id", "display_name", "policies", "entity_id", "token_type", "remote_address",
	"operation", "path", "role", "outcome", "status", "message", "certificates", "flags"}

// reportSections are the table's closing sections, in their order; the
// volume heading goes on with N and the window.
var reportSections = []string{"Issuance policy changes", "CA changes", "Revocations (", "Key-bearing calls", "Denials", "Refusals",
	"Signings by non-signer tokens", "Volume outliers (more than "}

// auditReport runs `mastio-ca audit-report args...` with no VAULT_*
// variable but those in env, and stdin when not nil.
func auditReport(t *testing.T, env []string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), server.cli, append([]string{"audit-report"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running audit-report: %v", err)
	}
	return o.String(), e.String(), code
}

// mustReport is auditReport that fails the test on a non-zero exit.
func mustReport(t *testing.T, env []string, stdin io.Reader, args ...string) string {
	t.Helper()
	out, errOut, code := auditReport(t, env, stdin, args...)
	if code != 0 {
		t.Fatalf("mastio-ca audit-report %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if strings.Contains(out, "hmac-sha256:") {
		t.Errorf("mastio-ca audit-report %s shows an HMAC as a value", strings.Join(args, " "))
	}
	return out
}

// reportRows parses JSON Lines output; every row must carry every key.
func reportRows(t *testing.T, out string) []reportRow {
	t.Helper()
	var rows []reportRow
	missing := map[string]int{}
	defer func() {
		for k, n := range missing {
			t.Errorf("audit-report --format json: %d of %d rows lack the key %q", n, len(rows), k)
		}
	}()
	for i, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &keys); err != nil {
			t.Fatalf("audit-report --format json, line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		for _, k := range reportRowKeys {
			if _, ok := keys[k]; !ok {
				missing[k]++
			}
		}
		var r reportRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit-report --format json, line %d: %v\n%s", i+1, err, line)
		}
		rows = append(rows, r)
	}
	return rows
}

// rawResponse is what the audit log itself says of one call's response.
type rawResponse struct {
	Time string `json:"time"`
	Auth struct {
		DisplayName      string   `json:"display_name"`
		Policies         []string `json:"policies"`
		TokenPolicies    []string `json:"token_policies"`
		IdentityPolicies []string `json:"identity_policies"`
		EntityID         string   `json:"entity_id"`
		TokenType        string   `json:"token_type"`
	} `json:"auth"`
	Request struct {
		ID            string `json:"id"`
		Operation     string `json:"operation"`
		Path          string `json:"path"`
		RemoteAddress string `json:"remote_address"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// rawResponses reads the response entries of a Vault audit log by request id.
func rawResponses(t *testing.T, path string) map[string]rawResponse {
	t.Helper()
	out := map[string]rawResponse{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, path)), "\n") {
		var e struct {
			Type string `json:"type"`
		}
		var r rawResponse
		if json.Unmarshal([]byte(line), &e) != nil || json.Unmarshal([]byte(line), &r) != nil {
			t.Fatalf("audit line is not JSON: %s", line)
		}
		if e.Type == "response" {
			out[r.Request.ID] = r
		}
	}
	return out
}

// tableSections splits the table's closing part into its sections'
// bodies, keyed by reportSections' headings, and returns the summary line.
func tableSections(t *testing.T, table string) (map[string]string, string) {
	t.Helper()
	lines := strings.Split(table, "\n")
	at, from := make([]int, len(reportSections)+1), 0
	for i, h := range append(slices.Clone(reportSections), "Summary: ") {
		at[i] = -1
		for j := from; j < len(lines); j++ {
			if strings.HasPrefix(strings.TrimSpace(lines[j]), h) {
				at[i], from = j, j+1
				break
			}
		}
		if at[i] < 0 {
			t.Fatalf("the table lacks %q (after the sections before it, in the spec's order):\n%s", h, table)
		}
	}
	bodies := map[string]string{}
	for i, h := range reportSections {
		bodies[h] = strings.Join(lines[at[i]+1:at[i+1]], "\n")
	}
	return bodies, strings.TrimSpace(lines[at[len(reportSections)]])
}

func flagSet(flags []string) string {
	f := slices.Clone(flags)
	sort.Strings(f)
	return strings.Join(f, ",")
}

// TestAudit_ReviewerReport reviews a real audit log the way a security
// reviewer would (issue 17): root, admin, signer, rotator and monitor
// tokens on a mount tuned as recommended; a clean session that raises only
// the expected CA changes; each flag provoked once and shown on exactly the
// calls that provoked it; who made each call as the log tells it; the
// certificates each signing issued; table, JSON Lines and CSV; gzip and
// stdin; --since/--until; and --serial/--spiffe-id on a mount that is not
// tuned, through the real server's sys/audit-hash.
func TestAudit_ReviewerReport(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	env := []string{"HOME=" + dir}

	// The tuning comes before the device, so that the clean session below
	// holds no mount tune (an issuance policy change); one is made later.
	mount, untuned := newMount(t), newMount(t)
	tuning := []string{"serial_number", "spiffe_id", "not_after"}
	if err := server.root.Sys().TuneMountAllowNilWithContext(ctx, mount, api.TuneMountConfigInput{AuditNonHMACResponseKeys: &tuning}); err != nil {
		t.Fatal(err)
	}
	auditPath, device := enableFileAuditDevice(t, dir)

	admin := tokenWith(t, "mastio-ca-admin.hcl", mount)
	signer := tokenWith(t, "mastio-signer.hcl", mount)
	rotator := tokenWith(t, "mastio-rotator.hcl", mount)
	monitor := tokenWith(t, "mastio-ca-monitor.hcl", mount)
	who := map[string]string{ // policies, as the report joins them, to the token
		"root": "root", mount + "-mastio-ca-admin": "admin", mount + "-mastio-signer": "signer",
		mount + "-mastio-rotator": "rotator", mount + "-mastio-ca-monitor": "monitor",
	}

	// A clean session.
	ac := client.New(admin, mount)
	if _, err := ac.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	inter, err := ac.GenerateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string]*client.SignedCertificate{} // by serial
	for i, name := range []string{"review-a", "review-b", "review-c"} {
		opts := client.SignOptions{}
		if i == 0 {
			opts.Role = "agent"
		}
		s, err := client.New(signer, mount).SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, name))), opts)
		if err != nil {
			t.Fatal(err)
		}
		signed[s.SerialNumber] = s
	}
	if _, err := monitor.Logical().ReadWithContext(ctx, mount+"/health"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(rotator, mount).RotateIntermediate(ctx, client.IntermediateRequest{CAS: &inter.Version}); err != nil {
		t.Fatal(err)
	}
	cleanPath := filepath.Join(dir, "clean.log")
	if err := os.WriteFile(cleanPath, []byte(readFile(t, auditPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	boundary := time.Now().UTC()

	// call is one call the report must show, with exactly these flags.
	type call struct {
		who, op, path, outcome string
		status                 int
		flags                  string
	}
	cleanCalls := []call{
		{"admin", "write", "generate", "ok", 200, "ca_change"},
		{"admin", "write", "intermediate/generate", "ok", 200, "ca_change"},
		{"signer", "write", "sign-csr/agent", "ok", 200, ""},
		{"signer", "write", "sign-csr", "ok", 200, ""},
		{"signer", "write", "sign-csr", "ok", 200, ""},
		{"monitor", "read", "health", "ok", 200, ""},
		{"rotator", "write", "intermediate/rotate", "ok", 200, "ca_change"},
	}
	// check matches rows to calls one for one, in any order; volume is
	// checked apart.
	check := func(t *testing.T, rows []reportRow, calls []call) {
		t.Helper()
		used := make([]bool, len(rows))
		for _, c := range calls {
			found := false
			for i, r := range rows {
				op := r.Operation
				if op == "create" || op == "update" {
					op = "write"
				}
				path := r.Path
				if strings.HasSuffix(path, mount+"/tune") {
					path = "tune"
				}
				if used[i] || who[strings.Join(r.Policies, ",")] != c.who || op != c.op || path != c.path || r.Outcome != c.outcome {
					continue
				}
				used[i], found = true, true
				flags := slices.DeleteFunc(slices.Clone(r.Flags), func(f string) bool { return f == "volume" })
				if got := flagSet(flags); got != c.flags {
					t.Errorf("%s %s %s (%s): flags [%s], want [%s]", c.who, r.Operation, r.Path, r.Outcome, got, c.flags)
				}
				if r.Status != c.status {
					t.Errorf("%s %s %s: status %d, want %d", c.who, r.Operation, r.Path, r.Status, c.status)
				}
				break
			}
			if !found {
				t.Errorf("the report lacks the call %+v", c)
			}
		}
		for i, r := range rows {
			if !used[i] {
				t.Errorf("the report has a call the test did not make: %+v", r)
			}
		}
	}

	// The clean session: the CA changes it made, no other flag.
	cleanRows := reportRows(t, mustReport(t, env, nil, "--mount", mount, "--format", "json", cleanPath))
	check(t, cleanRows, cleanCalls)
	for _, r := range cleanRows {
		if slices.Contains(r.Flags, "volume") {
			t.Errorf("clean session: %s %s flagged volume", r.Operation, r.Path)
		}
	}
	cleanTable := mustReport(t, env, nil, "--mount", mount, cleanPath)
	sections, summary := tableSections(t, cleanTable)
	for h, body := range sections {
		if none := strings.TrimSpace(body) == "(none)"; none != (h != "CA changes") {
			t.Errorf("clean session: section %q reads %q", h, strings.TrimSpace(body))
		}
	}
	for _, p := range []string{"generate", "intermediate/generate", "intermediate/rotate"} {
		if !strings.Contains(sections["CA changes"], p) {
			t.Errorf("clean session: the CA changes section lacks %s:\n%s", p, sections["CA changes"])
		}
	}
	if !strings.HasPrefix(summary, fmt.Sprintf("Summary: %d calls, ", len(cleanCalls))) {
		t.Errorf("clean session: %q", summary)
	}

	// Each flag provoked once. The role, config and kv-export writes
	// change nothing that signs (the values are the ones in force).
	if err := ac.WriteRole(ctx, "audit-extra", client.Role{URISANPattern: "spiffe://{{trust_domain}}/{{org_id}}/*", AllowDNSSANs: client.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.WriteConfig(ctx, client.Config{TrustDomain: "cullis.local"}); err != nil {
		t.Fatal(err)
	}
	if err := ac.DisableKVExport(ctx, "org-ca"); err != nil {
		t.Fatal(err)
	}
	if err := server.root.Sys().TuneMountAllowNilWithContext(ctx, mount, api.TuneMountConfigInput{AuditNonHMACResponseKeys: &tuning}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); !errors.Is(err, client.ErrExists) {
		t.Fatalf("a second generate: %v, want a 409", err)
	}
	if _, err := signer.Logical().ReadWithContext(ctx, mount+"/data/org-ca"); !errors.Is(err, client.ErrPermissionDenied) && !strings.Contains(fmt.Sprint(err), "permission denied") {
		t.Fatalf("the signer reading the KV mirror: %v, want permission denied", err)
	}
	s, err := client.New(server.root, mount).SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "review-root"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	signed[s.SerialNumber] = s
	allCalls := append(slices.Clone(cleanCalls),
		call{"admin", "write", "roles/audit-extra", "ok", 200, "policy_change"},
		call{"admin", "write", "config", "ok", 200, "policy_change"},
		call{"admin", "write", "kv-export/org-ca", "ok", 200, "policy_change"},
		call{"root", "write", "tune", "ok", 200, "policy_change"},
		call{"admin", "write", "generate", "refused", 409, "ca_change,refused"},
		call{"signer", "read", "data/org-ca", "denied", 403, "denied,key_bearing"},
		call{"root", "write", "sign-csr", "ok", 200, "non_signer"},
	)

	// The untuned mount: one signing, its serial and SPIFFE ID HMAC'd.
	uc := client.New(server.root, untuned)
	if _, err := uc.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := uc.GenerateIntermediate(ctx, client.IntermediateRequest{}); err != nil {
		t.Fatal(err)
	}
	hidden, err := client.New(tokenWith(t, "mastio-signer.hcl", untuned), untuned).SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "review-hidden"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The whole log, as JSON Lines.
	raw := rawResponses(t, auditPath)
	jsonOut := mustReport(t, env, nil, "--mount", mount, "--format", "json", auditPath)
	rows := reportRows(t, jsonOut)
	check(t, rows, allCalls)
	certs := 0
	for _, r := range rows {
		certs += len(r.Certificates)
		if slices.Contains(r.Flags, "volume") {
			t.Errorf("default thresholds: %s %s flagged volume", r.Operation, r.Path)
		}
		// Who: as the log has it, in the clear.
		l, ok := raw[r.RequestID]
		if !ok {
			t.Errorf("row %s %s: request id %q is not a response in the log", r.Operation, r.Path, r.RequestID)
			continue
		}
		var pol []string
		for _, p := range slices.Concat(l.Auth.Policies, l.Auth.TokenPolicies, l.Auth.IdentityPolicies) {
			if !slices.Contains(pol, p) {
				pol = append(pol, p)
			}
		}
		sort.Strings(pol)
		if r.DisplayName != l.Auth.DisplayName || r.EntityID != l.Auth.EntityID || r.TokenType != l.Auth.TokenType || !slices.Equal(r.Policies, pol) ||
			r.RemoteAddress != l.Request.RemoteAddress || r.Operation != l.Request.Operation {
			t.Errorf("row %s %s: who %q %v %q %q %q, the log says %q %v %q %q %q", r.Operation, r.Path,
				r.DisplayName, r.Policies, r.EntityID, r.TokenType, r.RemoteAddress,
				l.Auth.DisplayName, pol, l.Auth.EntityID, l.Auth.TokenType, l.Request.RemoteAddress)
		}
		if r.RemoteAddress != "127.0.0.1" || r.TokenType != "service" || r.DisplayName == "" {
			t.Errorf("row %s %s: display name %q, token type %q, remote address %q", r.Operation, r.Path, r.DisplayName, r.TokenType, r.RemoteAddress)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			t.Errorf("row %s %s: time %q: %v", r.Operation, r.Path, r.Time, err)
		}
		// What: the role, and each signing's certificate.
		if wantRole := strings.TrimPrefix(strings.TrimPrefix(r.Path, "sign-csr"), "/"); strings.HasPrefix(r.Path, "sign-csr") && r.Role != wantRole {
			t.Errorf("%s: role %q, want %q", r.Path, r.Role, wantRole)
		}
		if strings.HasPrefix(r.Path, "sign-csr") {
			if len(r.Certificates) != 1 {
				t.Errorf("%s: %d certificates, want 1", r.Path, len(r.Certificates))
				continue
			}
			c := r.Certificates[0]
			want, ok := signed[c.Serial]
			if !ok {
				t.Errorf("%s: serial %q is none the test was given", r.Path, c.Serial)
				continue
			}
			delete(signed, c.Serial)
			if na, err := time.Parse(time.RFC3339, c.NotAfter); err != nil || !na.Equal(want.NotAfter) || c.SPIFFEID != want.SPIFFEID {
				t.Errorf("%s: certificate %+v, want SPIFFE ID %s, not after %s", r.Path, c, want.SPIFFEID, want.NotAfter)
			}
		}
		if r.Outcome == "denied" && !strings.Contains(r.Message, "permission denied") {
			t.Errorf("denied %s: message %q", r.Path, r.Message)
		}
	}
	if len(signed) != 0 {
		t.Errorf("the report lacks the certificates %v", slices.Collect(maps.Keys(signed)))
	}

	// The table: every section, each listing the calls that raised it.
	table := mustReport(t, env, nil, "--mount", mount, auditPath)
	t.Logf("mastio-ca audit-report --mount %s audit.log:\n%s", mount, table)
	for _, col := range []string{"TIME", "WHO", "POLICIES", "ENTITY", "TOKEN", "REMOTE", "OP", "PATH", "ROLE", "OUTCOME", "SERIAL", "SPIFFE ID", "NOT AFTER"} {
		if !strings.Contains(table, col) {
			t.Errorf("the table lacks the column %s", col)
		}
	}
	for _, c := range rows {
		for _, crt := range c.Certificates {
			if !strings.Contains(table, crt.Serial) {
				t.Errorf("the table lacks serial %s", crt.Serial)
			}
		}
	}
	sections, summary = tableSections(t, table)
	for h, wants := range map[string][]string{
		"Issuance policy changes":       {"roles/audit-extra", "config", "kv-export/org-ca", "tune"},
		"CA changes":                    {"generate", "intermediate/generate", "intermediate/rotate"},
		"Key-bearing calls":             {"data/org-ca"},
		"Denials":                       {"data/org-ca"},
		"Refusals":                      {"generate"},
		"Signings by non-signer tokens": {"sign-csr", "root"},
		"Volume outliers (more than ":   {"(none)"},
	} {
		for _, w := range wants {
			if !strings.Contains(sections[h], w) {
				t.Errorf("section %q lacks %q:\n%s", h, w, sections[h])
			}
		}
	}
	if !strings.Contains(table, "Volume outliers (more than 1000 signings in ") {
		t.Error("the volume section does not name the default threshold")
	}
	if want := fmt.Sprintf("Summary: %d calls, %d certificates", len(rows), certs); !strings.HasPrefix(summary, want) {
		t.Errorf("summary %q, want %q", summary, want)
	}

	// The volume outlier: more than 2 signings in an hour is the signer.
	vrows := reportRows(t, mustReport(t, env, nil, "--mount", mount, "--format", "json", "--max-signings", "2", "--window", "1h", auditPath))
	check(t, vrows, allCalls)
	volume := 0
	for _, r := range vrows {
		if !slices.Contains(r.Flags, "volume") {
			continue
		}
		volume++
		if who[strings.Join(r.Policies, ",")] != "signer" || !strings.HasPrefix(r.Path, "sign-csr") {
			t.Errorf("--max-signings 2: %s %s flagged volume", r.Operation, r.Path)
		}
	}
	if volume == 0 {
		t.Error("--max-signings 2 --window 1h: the signer's 3 signings are no volume outlier")
	}
	vtable := mustReport(t, env, nil, "--mount", mount, "--max-signings", "2", "--window", "1h", auditPath)
	vsections, _ := tableSections(t, vtable)
	if !strings.Contains(vtable, "Volume outliers (more than 2 signings in ") || strings.TrimSpace(vsections["Volume outliers (more than "]) == "(none)" {
		t.Errorf("--max-signings 2: the volume section:\n%s", vtable[strings.Index(vtable, "Volume outliers"):])
	}
	t.Logf("with --max-signings 2 --window 1h, the volume section:\n%s", strings.TrimSpace(vtable[strings.Index(vtable, "Volume outliers"):]))

	// CSV: a header and one record per call.
	csvOut := mustReport(t, env, nil, "--mount", mount, "--format", "csv", auditPath)
	records, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	if len(records) != len(rows)+1 {
		t.Errorf("the CSV has %d records, want a header and %d", len(records), len(rows))
	} else if !strings.EqualFold(records[0][0], "time") {
		t.Errorf("the CSV's first record is no header: %v", records[0])
	}

	// Several inputs: a gzip'd copy and stdin read the calls twice.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(readFile(t, cleanPath)))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cleanPath+".1.gz", gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	twice := reportRows(t, mustReport(t, env, strings.NewReader(readFile(t, cleanPath)), "--mount", mount, "--format", "json", cleanPath+".1.gz", "-"))
	if len(twice) != 2*len(cleanRows) {
		t.Errorf("a gzip'd log and the same on stdin: %d calls, want %d", len(twice), 2*len(cleanRows))
	}

	// --since and --until.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, 0},
		{[]string{"--until", boundary.Add(-time.Hour).Format(time.RFC3339)}, 0},
		{[]string{"--until", boundary.Format(time.RFC3339Nano)}, len(cleanCalls)},
		{[]string{"--since", boundary.Format(time.RFC3339Nano)}, len(allCalls) - len(cleanCalls)},
	} {
		got := reportRows(t, mustReport(t, env, nil, append(append([]string{"--mount", mount, "--format", "json"}, tc.args...), auditPath)...))
		if len(got) != tc.want {
			t.Errorf("%v: %d calls, want %d", tc.args, len(got), tc.want)
		}
	}

	// --serial on the tuned mount needs no Vault: the log holds it.
	var one string
	for _, r := range cleanRows {
		if len(r.Certificates) == 1 && strings.HasPrefix(r.Path, "sign-csr") {
			one = r.Certificates[0].Serial
		}
	}
	if got := reportRows(t, mustReport(t, env, nil, "--mount", mount, "--format", "json", "--serial", one, auditPath)); len(got) != 1 || got[0].Certificates[0].Serial != one {
		t.Errorf("--serial %s on the tuned mount: %+v, want its one signing", one, got)
	}

	// --serial and --spiffe-id on the untuned mount, through sys/audit-hash.
	var hiddenID string
	for id, l := range raw {
		if l.Request.Path == untuned+"/sign-csr" {
			hiddenID = id
			if v, _ := l.Response.Data["serial_number"].(string); !strings.HasPrefix(v, "hmac-sha256:") {
				t.Fatalf("the untuned mount's serial is %q in the log: the lookup proves nothing", v)
			}
		}
	}
	if hiddenID == "" {
		t.Fatal("the log lacks the untuned mount's signing")
	}
	token := server.token
	if _, err := os.Stat(filepath.Join("..", "..", "policies", "mastio-auditor.hcl")); err == nil {
		token = tokenWith(t, "mastio-auditor.hcl", untuned).Token()
		t.Log("looking up with a token holding policies/mastio-auditor.hcl only")
	} else {
		t.Log("policies/mastio-auditor.hcl does not exist: looking up with the root token")
	}
	withToken := append(slices.Clone(env), "VAULT_ADDR="+server.addr, "VAULT_TOKEN="+token)
	noToken := append(slices.Clone(env), "VAULT_ADDR="+server.addr)
	for _, by := range [][]string{{"--serial", hidden.SerialNumber}, {"--spiffe-id", hidden.SPIFFEID}} {
		args := append([]string{"--mount", untuned, "--format", "json", "--audit-device", device}, by...)
		got := reportRows(t, mustReport(t, withToken, nil, append(args, auditPath)...))
		if len(got) != 1 || got[0].RequestID != hiddenID {
			t.Errorf("%v on the untuned mount: %d calls %+v, want the signing %s", by, len(got), got, hiddenID)
		}
		out, errOut, code := auditReport(t, noToken, nil, append(args, auditPath)...)
		if code != 1 || !strings.Contains(out+errOut, "VAULT_TOKEN") || !strings.Contains(out+errOut, "mastio-auditor") {
			t.Errorf("%v without VAULT_TOKEN: exit %d, %q; want exit 1 naming VAULT_TOKEN and the policy", by, code, out+errOut)
		}
	}
	// A serial the untuned mount never issued matches nothing.
	if got := reportRows(t, mustReport(t, withToken, nil, "--mount", untuned, "--format", "json", "--audit-device", device, "--serial", one, auditPath)); len(got) != 0 {
		t.Errorf("--serial of another mount's certificate: %d calls", len(got))
	}
}
