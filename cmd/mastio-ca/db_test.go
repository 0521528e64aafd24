package main

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDBURL(t *testing.T) {
	cases := []struct {
		in, driver, path, dsn, err string
	}{
		{in: "sqlite+aiosqlite:////data/mcp_proxy.db", driver: "sqlite", path: "/data/mcp_proxy.db"},
		{in: "sqlite:///relative/mcp.db", driver: "sqlite", path: "relative/mcp.db"},
		{in: "sqlite:////abs.db?mode=ro", driver: "sqlite", path: "/abs.db"},
		{in: "postgresql+asyncpg://u:secret@db:5432/mastio", driver: "pgx", dsn: "postgres://u:secret@db:5432/mastio"},
		{in: "postgres://u@localhost/m?ssl=require", driver: "pgx", dsn: "postgres://u@localhost/m?sslmode=require"},
		{in: "postgresql://u@localhost/m?sslmode=disable", driver: "pgx", dsn: "postgres://u@localhost/m?sslmode=disable"},
		{in: "postgresql+asyncpg://u@localhost/m?ssl=false", driver: "pgx", dsn: "postgres://u@localhost/m?sslmode=disable"},
		{in: "postgresql+asyncpg://u:S3cret%PW@h/db", err: "not a valid PostgreSQL URL"},
		{in: "mysql://x", err: `scheme "mysql" is not supported`},
		{in: "/data/mcp_proxy.db", err: "has no scheme"},
		{in: "sqlite://", err: "names no SQLite file"},
	}
	for _, tc := range cases {
		got, err := parseDBURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "S3cret") {
				t.Errorf("%s: the error quotes the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got.driver != tc.driver || got.path != tc.path || got.dsn != tc.dsn {
			t.Errorf("%s: got %+v, %v", tc.in, got, err)
		}
		if strings.Contains(got.shown, "secret") {
			t.Errorf("%s: shown form %q carries the password", tc.in, got.shown)
		}
	}
}

// pythonFernet encrypts payload as Mastio does, with Python's cryptography
// (Debian's python3-cryptography): an implementation independent of ours.
func pythonFernet(t *testing.T, passphrase, payload string) string {
	t.Helper()
	script := `
import sys, base64
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"cullis-mastio-pki-v1", iterations=600000)
key = base64.urlsafe_b64encode(kdf.derive(sys.argv[1].encode()))
sys.stdout.write("enc:pki:v1:" + Fernet(key).encrypt(sys.stdin.read().encode()).decode())
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, passphrase)
	cmd.Stdin = strings.NewReader(payload)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 cryptography (installed by make deps): %v", err)
	}
	return string(out)
}

func TestDecryptPKIRow_PythonToken(t *testing.T) {
	ct := pythonFernet(t, "correct horse", `{"key_pem": "KEY", "cert_pem": "CERT"}`)
	k, err := pkiFernetKey("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := decryptPKIRow(ct, k)
	if err != nil || key != "KEY" || cert != "CERT" {
		t.Fatalf("decrypt = %q, %q, %v", key, cert, err)
	}
	wrong, _ := pkiFernetKey("wrong")
	if _, _, err := decryptPKIRow(ct, wrong); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, _, err := decryptPKIRow(strings.TrimPrefix(ct, pkiPrefix), k); err == nil || !strings.Contains(err.Error(), "does not start with") {
		t.Fatalf("missing prefix: %v", err)
	}
	notJSON := pythonFernet(t, "p", "KEY MATERIAL")
	kp, _ := pkiFernetKey("p")
	if _, _, err := decryptPKIRow(notJSON, kp); err == nil || strings.Contains(err.Error(), "KEY MATERIAL") {
		t.Fatalf("non-JSON payload: %v (must not quote the plaintext)", err)
	}
}

// mastioSchema is Mastio's DDL for the two tables migrate reads.
const mastioSchema = `
CREATE TABLE proxy_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pki_key_store (key_id TEXT PRIMARY KEY, key_type TEXT NOT NULL, ciphertext TEXT NOT NULL,
  cert_pem TEXT NOT NULL, created_at TIMESTAMP, activated_at TIMESTAMP, deprecated_at TIMESTAMP, expires_at TIMESTAMP);
`

func newSQLiteDB(t *testing.T) (*sql.DB, *dbTarget) {
	t.Helper()
	target, err := parseDBURL("sqlite+aiosqlite:///" + filepath.Join(t.TempDir(), "mcp_proxy.db"))
	if err != nil {
		t.Fatal(err)
	}
	create, err := sql.Open("sqlite", target.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(mastioSchema, ";") {
		if strings.TrimSpace(stmt) != "" {
			if _, err := create.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	create.Close()
	db, err := target.open(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, target
}

func TestReadCAsAndClear_SQLite(t *testing.T) {
	db, target := newSQLiteDB(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("INSERT INTO proxy_config VALUES ('org_ca_key', 'ORGKEY'), ('org_ca_cert', 'ORGCERT'), ('org_id', 'acme')")
	ct := pythonFernet(t, "pw", `{"key_pem": "INTKEY", "cert_pem": "INTCERT"}`)
	exec("INSERT INTO pki_key_store VALUES ('intermediate-0123', 'intermediate_ca', ?, 'INTCERT', NULL, '2026-01-01', NULL, NULL)", ct)
	exec("INSERT INTO pki_key_store VALUES ('intermediate-old', 'intermediate_ca', 'enc:pki:v1:old', 'OLD', NULL, '2025-01-01', '2026-01-01', NULL)")

	found, missing, err := readCAs(ctx, db, target, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if o := found[kindOrg]; o == nil || o.keyPEM != "ORGKEY" || o.certPEM != "ORGCERT" || o.source != "proxy_config" {
		t.Fatalf("org = %+v", found[kindOrg])
	}
	if i := found[kindIntermediate]; i == nil || i.keyPEM != "INTKEY" || i.source != "pki_key_store" || i.keyID != "intermediate-0123" {
		t.Fatalf("intermediate = %+v", found[kindIntermediate])
	}
	if len(missing) != 0 {
		t.Fatalf("missing = %v", missing)
	}
	if id, err := readOrgID(ctx, db); err != nil || id != "acme" {
		t.Fatalf("org_id = %q, %v", id, err)
	}
	if _, _, err := readCAs(ctx, db, target, ""); err == nil || !strings.Contains(err.Error(), "MCP_PROXY_DB_ENCRYPTION_KEY is not set") {
		t.Fatalf("no passphrase: %v", err)
	}

	if err := clearKeys(ctx, db, target, []*dbCA{found[kindOrg], found[kindIntermediate]}); err != nil {
		t.Fatal(err)
	}
	var orgKey, orgCert, intCT, oldCT string
	_ = db.QueryRow("SELECT value FROM proxy_config WHERE key = 'org_ca_key'").Scan(&orgKey)
	_ = db.QueryRow("SELECT value FROM proxy_config WHERE key = 'org_ca_cert'").Scan(&orgCert)
	_ = db.QueryRow("SELECT ciphertext FROM pki_key_store WHERE key_id = 'intermediate-0123'").Scan(&intCT)
	_ = db.QueryRow("SELECT ciphertext FROM pki_key_store WHERE key_id = 'intermediate-old'").Scan(&oldCT)
	if orgKey != "" || orgCert != "ORGCERT" || intCT != "" || oldCT == "" {
		t.Fatalf("after clear: org key %q, org cert %q, intermediate ciphertext %q, deprecated row %q", orgKey, orgCert, intCT, oldCT)
	}
	found, missing, err = readCAs(ctx, db, target, "pw")
	if err != nil || missing[kindOrg] != errNoKey || missing[kindIntermediate] != errNoKey || found[kindOrg].certPEM != "ORGCERT" {
		t.Fatalf("after clear: found %+v missing %v err %v", found, missing, err)
	}

	// A key that changed since it was read (Mastio rotated it) is not
	// cleared, and nothing else is either.
	exec("UPDATE proxy_config SET value = 'ORGKEY' WHERE key = 'org_ca_key'")
	exec("INSERT INTO proxy_config VALUES ('mastio_ca_key', 'INTKEY-ROTATED')")
	stale := []*dbCA{{kind: kindOrg, source: "proxy_config", keyPEM: "ORGKEY"}, {kind: kindIntermediate, source: "proxy_config", keyPEM: "INTKEY-OLD"}}
	if err := clearKeys(ctx, db, target, stale); err == nil || !strings.Contains(err.Error(), "changed since it was read") {
		t.Fatalf("clear of a changed row: %v", err)
	}
	var intKey string
	_ = db.QueryRow("SELECT value FROM proxy_config WHERE key = 'org_ca_key'").Scan(&orgKey)
	_ = db.QueryRow("SELECT value FROM proxy_config WHERE key = 'mastio_ca_key'").Scan(&intKey)
	if orgKey != "ORGKEY" || intKey != "INTKEY-ROTATED" {
		t.Fatalf("a refused clear changed rows: %q %q", orgKey, intKey)
	}

	// A clear that cannot find its row rolls everything back.
	exec("UPDATE proxy_config SET value = 'ORGKEY' WHERE key = 'org_ca_key'")
	ghost := &dbCA{kind: kindIntermediate, source: "pki_key_store", keyID: "ghost"}
	if err := clearKeys(ctx, db, target, []*dbCA{{kind: kindOrg, source: "proxy_config"}, ghost}); err == nil {
		t.Fatal("clear of a missing row succeeded")
	}
	_ = db.QueryRow("SELECT value FROM proxy_config WHERE key = 'org_ca_key'").Scan(&orgKey)
	if orgKey != "ORGKEY" {
		t.Fatalf("the failed clear was not rolled back: org key %q", orgKey)
	}
}

// TestMigrateUsage_NoPassword: usage text must not print the database URL
// from the environment, which may carry a password.
func TestMigrateUsage_NoPassword(t *testing.T) {
	var out, errOut strings.Builder
	env := migrateEnv{
		getenv: func(k string) string {
			if k == "MCP_PROXY_DATABASE_URL" {
				return "postgresql+asyncpg://mastio:S3cretPW@db/mastio"
			}
			return ""
		},
		stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
	}
	for _, args := range [][]string{{"-h"}, {"--no-such-flag"}} {
		runMigrate(context.Background(), args, env)
	}
	if strings.Contains(out.String()+errOut.String(), "S3cret") {
		t.Fatalf("usage output carries the database password:\n%s", errOut.String())
	}
	if !strings.Contains(errOut.String(), "Exit codes") {
		t.Fatalf("usage lacks the exit codes:\n%s", errOut.String())
	}
}
