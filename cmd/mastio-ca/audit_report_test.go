package main

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditLine is one audit entry as Vault's file device writes it, reduced
// to the fields the report reads.
func auditLine(typ, id, op, path string, t time.Time, policies []string, data map[string]any, errText string) string {
	return auditLineData(typ, id, op, path, t, policies, nil, data, errText)
}

// auditLineData is auditLine with the request's data too.
func auditLineData(typ, id, op, path string, t time.Time, policies []string, reqData, data map[string]any, errText string) string {
	e := map[string]any{
		"type": typ, "time": t.UTC().Format(time.RFC3339Nano), "error": errText,
		"auth":    map[string]any{"display_name": "token-" + strings.Join(policies, "-"), "policies": policies, "token_type": "service", "accessor": "hmac-sha256:aa"},
		"request": map[string]any{"id": id, "operation": op, "path": path, "remote_address": "127.0.0.1", "data": reqData},
	}
	if typ == "response" {
		e["response"] = map[string]any{"data": data}
	}
	b, _ := json.Marshal(e)
	return string(b) + "\n"
}

// call writes a request and its response.
func call(sb *strings.Builder, id, op, path string, t time.Time, policies []string, data map[string]any, errText string) {
	sb.WriteString(auditLine("request", id, op, path, t, policies, nil, ""))
	sb.WriteString(auditLine("response", id, op, path, t, policies, data, errText))
}

func runReport(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	old := os.Stdin
	if stdin != "" {
		r, w, _ := os.Pipe()
		go func() { w.WriteString(stdin); w.Close() }()
		os.Stdin = r
		defer func() { os.Stdin = old }()
	}
	code := runAuditReport(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestAuditReport_FlagsAndFormats(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	signer, admin := []string{"m-mastio-signer"}, []string{"m-mastio-ca-admin"}
	var sb strings.Builder
	call(&sb, "r1", "update", "m/generate", t0, admin, map[string]any{"serial_number": "01:02"}, "")
	call(&sb, "r2", "update", "m/sign-csr/agent", t0.Add(time.Minute), signer, map[string]any{"serial_number": "0a:0b", "spiffe_id": "spiffe://td/acme/a1", "not_after": "2027-12-01T10:01:00Z"}, "")
	call(&sb, "r3", "update", "m/sign-csr", t0.Add(2*time.Minute), []string{"root"}, map[string]any{"serial_number": "0c:0d", "spiffe_id": "spiffe://td/acme/a2"}, "")
	call(&sb, "r4", "update", "m/sign-csr", t0.Add(3*time.Minute), signer, map[string]any{"certificates": []any{
		map[string]any{"serial_number": "10:01", "spiffe_id": "spiffe://td/acme/b1"}, map[string]any{"serial_number": "10:02"}}, "failed": 0}, "")
	call(&sb, "r5", "create", "m/roles/x", t0.Add(4*time.Minute), admin, nil, "")
	call(&sb, "r6", "read", "m/data/org-ca", t0.Add(5*time.Minute), signer, nil, "1 error occurred:\n\t* permission denied\n\n")
	call(&sb, "r7", "update", "m/generate", t0.Add(6*time.Minute), admin, map[string]any{"http_status_code": 409.0, "http_raw_body": "hmac-sha256:ff"}, "")
	call(&sb, "r8", "update", "m/sign-csr", t0.Add(7*time.Minute), signer, map[string]any{"error": "hmac-sha256:ee"}, "")
	call(&sb, "r9", "update", "sys/mounts/m/tune", t0.Add(8*time.Minute), []string{"root"}, nil, "")
	call(&sb, "o1", "update", "other/sign-csr", t0, signer, map[string]any{"serial_number": "ff"}, "")
	sb.WriteString(auditLine("request", "r10", "update", "m/sign-csr", t0.Add(9*time.Minute), signer, nil, ""))
	log := sb.String()
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(file, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runReport(t, "", "--mount", "m", "--format", "json", "--max-signings", "2", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	flags := map[string]string{}
	var calls []auditCall
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c auditCall
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
		flags[c.RequestID] = strings.Join(c.Flags, ",")
	}
	want := map[string]string{
		"r1": "ca_change", "r2": "", "r3": "non_signer", "r4": "volume", "r5": "policy_change",
		"r6": "key_bearing,denied", "r7": "ca_change,refused", "r8": "refused", "r9": "policy_change", "r10": "",
	}
	for id, f := range want {
		if flags[id] != f {
			t.Errorf("%s flags = %q, want %q", id, flags[id], f)
		}
	}
	if len(calls) != len(want) {
		t.Fatalf("%d calls reported, want %d (the other mount's left out)", len(calls), len(want))
	}
	if c := calls[1]; c.Role != "agent" || len(c.Certificates) != 1 || c.Certificates[0].Serial != "0a:0b" || c.Certificates[0].NotAfter == "" || c.Policies[0] != "m-mastio-signer" || c.RemoteAddress != "127.0.0.1" || c.TokenType != "service" {
		t.Errorf("r2 = %+v", c)
	}
	if c := calls[3]; len(c.Certificates) != 2 || c.Certificates[1].Serial != "10:02" {
		t.Errorf("a batch's certificates: %+v", c.Certificates)
	}
	if c := calls[5]; c.Outcome != "denied" || c.Status != 403 {
		t.Errorf("r6 outcome %q %d", c.Outcome, c.Status)
	}
	if c := calls[6]; c.Outcome != "refused" || c.Status != 409 || c.Message != "" {
		t.Errorf("r7 outcome %q %d %q (an HMAC'd body is no message)", c.Outcome, c.Status, c.Message)
	}
	if c := calls[9]; c.RequestID != "r10" || c.Outcome != "no response logged" {
		t.Errorf("a request without a response: %+v", c)
	}
	if strings.Contains(out, "hmac-sha256") {
		t.Error("the report shows an HMAC as if it meant something")
	}

	// The table: every section, the default volume limit not tripped.
	out, _, _ = runReport(t, "", "--mount", "m", file)
	for _, s := range []string{"Issuance policy changes", "CA changes", "Key-bearing calls", "Denials: 1", "Refusals: 2", "Signings by non-signer tokens", "Volume outliers (more than 1000 signings in 1h0m0s): 0", "Summary: 10 calls"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}

	// CSV, several inputs (a gzip-rotated one and stdin), and a time window.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(log))
	zw.Close()
	gzFile := filepath.Join(dir, "audit.log.1.gz")
	if err := os.WriteFile(gzFile, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runReport(t, log, "--mount", "m", "--format", "csv", gzFile, "-")
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	// r10's request, awaiting its response in both copies, is one call.
	if code != 0 || err != nil || len(records) != 1+2*len(want)-1 || records[0][0] != "time" {
		t.Fatalf("csv of gzip + stdin: exit %d (%s), %d records, %v", code, errOut, len(records), err)
	}
	out, _, _ = runReport(t, "", "--mount", "m", "--format", "json", "--since", t0.Add(5*time.Minute).Format(time.RFC3339), "--until", t0.Add(7*time.Minute).Format(time.RFC3339), file)
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("--since/--until kept %d calls, want 2 (r6, r7)", n)
	}

	// Finding one certificate.
	out, _, _ = runReport(t, "", "--mount", "m", "--format", "json", "--serial", "10:02", file)
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"r4"`) {
		t.Errorf("--serial 10:02: %s", out)
	}
	out, _, _ = runReport(t, "", "--mount", "m", "--format", "json", "--spiffe-id", "spiffe://td/acme/a2", file)
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"r3"`) {
		t.Errorf("--spiffe-id: %s", out)
	}
}

func TestAuditReport_HMACdLogNeedsAToken(t *testing.T) {
	var sb strings.Builder
	call(&sb, "r1", "update", "m/sign-csr", time.Now(), []string{"s"}, map[string]any{"serial_number": "hmac-sha256:aa", "spiffe_id": "hmac-sha256:bb"}, "")
	file := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(file, []byte(sb.String()), 0o600)
	t.Setenv("VAULT_TOKEN", "")
	_, errOut, code := runReport(t, "", "--mount", "m", "--serial", "01:02", file)
	if code != 1 || !strings.Contains(errOut, "VAULT_TOKEN") || !strings.Contains(errOut, "mastio-auditor.hcl") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestAuditReport_BadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(file, []byte("{\"type\":\"request\",\"request\":{\"path\":\"m/x\"}}\nnot json but m/ here\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mount", "m", file}, "line 2 is not an audit entry"},
		{[]string{"--format", "xml", file}, "--format \"xml\""},
		{[]string{"--since", "yesterday", file}, "RFC 3339"},
		{[]string{"--max-signings", "0", file}, "--max-signings"},
		{[]string{filepath.Join(t.TempDir(), "missing")}, "no such file"},
	} {
		if _, errOut, code := runReport(t, "", tc.args...); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// BenchmarkAuditReport reads a log of 10,000 calls (20,000 lines) as
// json, with every call to the mount and with one in ten (the others are
// skipped undecoded): the lines a second go in BENCHMARKS.md.
func BenchmarkAuditReport(b *testing.B) {
	for _, every := range []int{1, 10} {
		var sb strings.Builder
		t0 := time.Now()
		for i := range 10000 {
			mount := "other"
			if i%every == 0 {
				mount = "m"
			}
			call(&sb, fmt.Sprint("r", i), "update", mount+"/sign-csr", t0.Add(time.Duration(i)*time.Millisecond), []string{"m-mastio-signer"}, map[string]any{"serial_number": fmt.Sprintf("%x", i), "spiffe_id": "spiffe://td/acme/a"}, "")
		}
		file := filepath.Join(b.TempDir(), "audit.log")
		os.WriteFile(file, []byte(sb.String()), 0o600)
		b.Run(fmt.Sprintf("1-in-%d-to-the-mount", every), func(b *testing.B) {
			b.SetBytes(int64(sb.Len()))
			for b.Loop() {
				if code := runAuditReport([]string{"--mount", "m", "--format", "json", file}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
					b.Fatal("exit", code)
				}
			}
			b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// Rotated logs given newest first (as audit.log* expands) are read oldest
// first: a call split across two files is one call, and signings days
// apart are no volume outlier.
func TestAuditReport_RotatedLogsAnyOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	signer := []string{"m-mastio-signer"}
	var older, newer strings.Builder
	call(&older, "a1", "update", "m/sign-csr", t0, signer, map[string]any{"serial_number": "01"}, "")
	call(&older, "a2", "update", "m/sign-csr", t0.Add(time.Hour), signer, map[string]any{"serial_number": "02"}, "")
	older.WriteString(auditLine("request", "split", "update", "m/sign-csr", t0.Add(5*24*time.Hour), signer, nil, ""))
	newer.WriteString(auditLine("response", "split", "update", "m/sign-csr", t0.Add(5*24*time.Hour), signer, map[string]any{"serial_number": "03"}, ""))
	call(&newer, "b1", "update", "m/data/org-ca", t0.Add(5*24*time.Hour+time.Minute), []string{"root"}, nil, "")
	dir := t.TempDir()
	oldFile, newFile := filepath.Join(dir, "audit.log.1"), filepath.Join(dir, "audit.log")
	os.WriteFile(oldFile, []byte(older.String()), 0o600)
	os.WriteFile(newFile, []byte(newer.String()), 0o600)
	out, errOut, code := runReport(t, "", "--mount", "m", "--format", "json", "--max-signings", "2", "--window", "24h", newFile, oldFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 4 || strings.Contains(out, "no response logged") {
		t.Fatalf("%d calls; the split call must be one: %s", n, out)
	}
	if strings.Contains(out, `"volume"`) {
		t.Error("signings days apart were flagged as a volume outlier")
	}
	if !strings.Contains(out, `"flags":["ca_change","key_bearing"]`) {
		t.Errorf("a write through the KV mirror is a CA change: %s", out)
	}
}

// The reader holds what awaits a response, not every request it has seen.
func TestAuditReader_Bounded(t *testing.T) {
	n := 0
	ar := newAuditReader("m", func(*auditCall) error { n++; return nil })
	for i := range 50000 {
		id := fmt.Sprint("r", i)
		for _, typ := range []string{"request", "response"} {
			e := auditEntry{Type: typ}
			e.Request.ID, e.Request.Path, e.Request.Operation = id, "m/sign-csr", "update"
			if err := ar.entry(&e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 50000 || len(ar.pending) != 0 || len(ar.order) > 1024 {
		t.Fatalf("emitted %d, pending %d, order %d", n, len(ar.pending), len(ar.order))
	}
}

// Revocations: every revoke and tidy call in a section of its own, with
// the serial and reason when the log leaves them readable (the response's
// first, else the request's), never counted as certificates issued, and
// found by --serial beside the signing that issued the certificate.
func TestAuditReport_Revocations(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	signer, revoker, admin := []string{"m-mastio-signer"}, []string{"m-mastio-revoker"}, []string{"m-mastio-ca-admin"}
	revokeCall := func(sb *strings.Builder, id string, at time.Duration, policies []string, req, resp map[string]any, errText string) {
		sb.WriteString(auditLineData("request", id, "update", "m/revoke", t0.Add(at), policies, req, nil, ""))
		sb.WriteString(auditLineData("response", id, "update", "m/revoke", t0.Add(at), policies, req, resp, errText))
	}
	var sb strings.Builder
	call(&sb, "s1", "update", "m/sign-csr/agent", t0, signer, map[string]any{"serial_number": "0a:0b", "spiffe_id": "spiffe://td/acme/a1", "not_after": "2027-12-01T10:00:00Z"}, "")
	// Tuned: the response's serial and reason are readable.
	revokeCall(&sb, "v1", time.Minute, revoker, map[string]any{"certificate": "hmac-sha256:c1", "reason": "hmac-sha256:r1"}, map[string]any{
		"serial_number": "0a:0b", "reason": "keyCompromise", "revocation_time": "2026-12-01T10:01:00Z", "not_after": "2027-12-01T10:00:00Z",
		"issuer_id": "hmac-sha256:i1", "already_revoked": false, "crl_number": 7.0}, "")
	revokeCall(&sb, "v2", 2*time.Minute, revoker, map[string]any{"certificate": "hmac-sha256:c1"}, map[string]any{
		"serial_number": "0a:0b", "reason": "keyCompromise", "already_revoked": true, "crl_number": 7.0}, "")
	// Not tuned: only HMACs, and the never-hashed values.
	revokeCall(&sb, "v3", 3*time.Minute, revoker, map[string]any{"certificate": "hmac-sha256:c3"}, map[string]any{
		"serial_number": "hmac-sha256:s3", "reason": "hmac-sha256:r3", "already_revoked": false, "crl_number": 9.0}, "")
	// Refused: only the request says what was asked (request keys tuned).
	revokeCall(&sb, "v4", 4*time.Minute, revoker, map[string]any{"serial_number": "0C0D", "issuer": "intermediate-ca", "not_after": "2027-01-01T00:00:00Z", "reason": "superseded"},
		map[string]any{"http_status_code": 404.0, "http_raw_body": "hmac-sha256:ff"}, "")
	revokeCall(&sb, "v5", 5*time.Minute, signer, map[string]any{"serial_number": "hmac-sha256:s5"}, nil, "1 error occurred:\n\t* permission denied\n\n")
	call(&sb, "v6", "update", "m/tidy", t0.Add(6*time.Minute), admin, map[string]any{"revocations_removed": 3.0, "retired_keys_dropped": 1.0}, "")
	call(&sb, "c1", "read", "m/crl", t0.Add(7*time.Minute), nil, nil, "") // a CRL read is no revocation
	file := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runReport(t, "", "--mount", "m", "--format", "json", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	calls := map[string]auditCall{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c auditCall
		var keys map[string]any
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(l), &keys)
		if _, ok := keys["revocation"]; !ok {
			t.Errorf("%s: no revocation key (null when none): %s", c.RequestID, l)
		}
		calls[c.RequestID] = c
	}
	for id, want := range map[string]string{"s1": "", "v1": "revocation", "v2": "revocation", "v3": "revocation", "v4": "revocation,refused", "v5": "revocation,denied", "v6": "revocation", "c1": ""} {
		if got := strings.Join(calls[id].Flags, ","); got != want {
			t.Errorf("%s flags = %q, want %q", id, got, want)
		}
	}
	i64 := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	if c := calls["v1"]; len(c.Certificates) != 0 || c.Revocation == nil || c.Revocation.Serial != "0a:0b" || c.Revocation.Reason != "keyCompromise" ||
		i64(c.Revocation.CRLNumber) != 7 || c.Revocation.AlreadyRevoked == nil || *c.Revocation.AlreadyRevoked || c.Revocation.IssuerID != "" || c.Revocation.NotAfter != "2027-12-01T10:00:00Z" {
		t.Errorf("v1 = %+v, revocation %+v", c, c.Revocation)
	}
	if r := calls["v2"].Revocation; r == nil || r.AlreadyRevoked == nil || !*r.AlreadyRevoked {
		t.Errorf("v2 revocation %+v", r)
	}
	if r := calls["v3"].Revocation; r == nil || r.Serial != "" || r.Reason != "" || i64(r.CRLNumber) != 9 {
		t.Errorf("v3 (HMAC'd) revocation %+v", r)
	}
	if r := calls["v4"].Revocation; r == nil || r.Serial != "0c:0d" || r.Reason != "superseded" || r.IssuerID != "intermediate-ca" || calls["v4"].Status != 404 {
		t.Errorf("v4 (refused, from the request) revocation %+v", r)
	}
	if r := calls["v6"].Revocation; r == nil || i64(r.RevocationsRemoved) != 3 || i64(r.RetiredKeysDropped) != 1 {
		t.Errorf("v6 (tidy) revocation %+v", r)
	}
	if calls["s1"].Revocation != nil || calls["c1"].Revocation != nil {
		t.Error("a call that is no revoke or tidy has a revocation")
	}
	if strings.Contains(out, "hmac-sha256") {
		t.Error("the report shows an HMAC as if it meant something")
	}

	// The table: its own section, after the CA changes, with what each
	// call did; the summary counts what was revoked.
	out, _, _ = runReport(t, "", "--mount", "m", file)
	section := out[strings.Index(out, "Revocations (revoke, tidy): 6"):]
	if strings.Index(out, "CA changes") > strings.Index(out, "Revocations (") || strings.Index(out, "Key-bearing calls") < strings.Index(out, "Revocations (") {
		t.Errorf("the revocations section is not between the CA changes and key-bearing calls:\n%s", out)
	}
	section = section[:strings.Index(section, "\n\n")]
	for _, want := range []string{
		"[m-mastio-revoker] update revoke ok v1: serial 0a:0b, reason keyCompromise, CRL 7",
		"update revoke ok v2: serial 0a:0b, reason keyCompromise, already revoked (the first revocation stands), CRL 7",
		"update revoke ok v3: serial HMAC'd (tune -audit-non-hmac-response-keys=serial_number, or --serial with a token), CRL 9",
		"update revoke refused 404 v4: serial 0c:0d, reason superseded",
		"[m-mastio-signer] update revoke denied 403 v5: serial not readable",
		"[m-mastio-ca-admin] update tidy ok v6: 3 expired revocations removed, 1 retired intermediate keys dropped",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the revocations section lacks %q:\n%s", want, section)
		}
	}
	if strings.Contains(section, "c1") || strings.Contains(section, "s1") {
		t.Errorf("the revocations section lists other calls:\n%s", section)
	}
	if !strings.Contains(out, "Summary: 8 calls, 1 certificates issued or created, 1 denials, 1 refusals, 0 signings by non-signer tokens, 2 certificates revoked") {
		t.Errorf("summary:\n%s", out[strings.Index(out, "Summary"):])
	}
	for _, l := range strings.Split(out, "\n") { // the row shows the certificate revoke names
		if strings.Contains(l, "  revoke  ") && strings.Contains(l, "keyCompromise") {
			t.Errorf("the call table carries the reason: %s", l)
		}
		if strings.HasPrefix(l, "2026-12-01T10:01:00Z") && !strings.Contains(l, "0a:0b") {
			t.Errorf("v1's row lacks its serial: %s", l)
		}
	}

	// CSV: the revocation's columns at the end.
	out, _, _ = runReport(t, "", "--mount", "m", "--format", "csv", file)
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(records) != 9 {
		t.Fatalf("csv: %d records, %v", len(records), err)
	}
	if h := records[0]; len(h) != 20 || h[17] != "revoked_serial" || h[18] != "revocation_reason" || h[19] != "revocation_note" {
		t.Errorf("csv header %v", h)
	}
	if r := records[2]; r[1] != "v1" || r[13] != "" || r[17] != "0a:0b" || r[18] != "keyCompromise" || r[19] != "CRL 7" {
		t.Errorf("csv v1 %v", r)
	}

	// --serial finds the signing that issued the certificate and the
	// revokes that name it.
	out, _, _ = runReport(t, "", "--mount", "m", "--format", "json", "--serial", "0a:0b", file)
	if n := strings.Count(out, "\n"); n != 3 || !strings.Contains(out, `"request_id":"s1"`) || !strings.Contains(out, `"request_id":"v1"`) || !strings.Contains(out, `"request_id":"v2"`) {
		t.Errorf("--serial 0a:0b: %s", out)
	}
}
