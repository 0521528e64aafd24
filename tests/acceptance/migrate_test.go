package acceptance

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// mastioCAs is an Org CA and a Mastio Intermediate under it, made by openssl
// the way Mastio makes them.
type mastioCAs struct {
	dir                              string
	orgKey, orgCert, intKey, intCert string
}

func makeMastioCAs(t *testing.T) *mastioCAs {
	t.Helper()
	dir := t.TempDir()
	orgKey, orgCert := opensslCA(t, dir, "org")
	mustOpenSSL(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "int.key")
	mustOpenSSL(t, dir, "req", "-new", "-key", "int.key", "-subj", "/O=acme/CN=acme Mastio CA", "-out", "int.csr")
	ext := "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
	if err := os.WriteFile(filepath.Join(dir, "int.ext"), []byte(ext), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpenSSL(t, dir, "x509", "-req", "-in", "int.csr", "-CA", "org.pem", "-CAkey", "org.key", "-CAcreateserial",
		"-days", "1825", "-extfile", "int.ext", "-extensions", "v3", "-out", "int.pem")
	return &mastioCAs{dir: dir, orgKey: orgKey, orgCert: orgCert,
		intKey: readFile(t, filepath.Join(dir, "int.key")), intCert: readFile(t, filepath.Join(dir, "int.pem"))}
}

const mastioSchema = `CREATE TABLE proxy_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pki_key_store (key_id TEXT PRIMARY KEY, key_type TEXT NOT NULL, ciphertext TEXT NOT NULL,
  cert_pem TEXT NOT NULL, created_at TIMESTAMP, activated_at TIMESTAMP, deprecated_at TIMESTAMP, expires_at TIMESTAMP)`

// pythonFernet encrypts like Mastio, with Python's cryptography package —
// an implementation independent of the CLI's.
func pythonFernet(t *testing.T, passphrase, keyPEM, certPEM string) string {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"key_pem": keyPEM, "cert_pem": certPEM})
	script := `
import sys, base64
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"cullis-mastio-pki-v1", iterations=600000)
key = base64.urlsafe_b64encode(kdf.derive(sys.argv[1].encode()))
sys.stdout.write("enc:pki:v1:" + Fernet(key).encrypt(sys.stdin.buffer.read()).decode())
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, passphrase)
	cmd.Stdin = bytes.NewReader(payload)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 cryptography (installed by make deps): %v", err)
	}
	return string(out)
}

// mastioDB is a seeded Mastio database: a SQLite file or a PostgreSQL
// database of its own.
type mastioDB struct {
	url  string // as migrate --db takes it
	path string // the SQLite file, "" for PostgreSQL
	db   *sql.DB
	q    func(string) string // rewrites ? placeholders for the dialect
	// secrets are strings of key material seeded into the database, which
	// must be gone from the SQLite file after --clear-db.
	secrets []string
}

func newMastioDB(t *testing.T, kind string) *mastioDB {
	t.Helper()
	m := &mastioDB{q: func(s string) string { return s }}
	switch kind {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "mcp_proxy.db")
		m.url, m.path = "sqlite+aiosqlite:///"+path, path // Mastio's own spelling
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		m.db = db
	case "postgres":
		dsn, err := postgresDSN()
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		name := "mastio_" + randomHex(4)
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		dbURL := strings.Replace(dsn, "/postgres?", "/"+name+"?", 1)
		m.url = strings.Replace(dbURL, "postgres://", "postgresql+asyncpg://", 1) // Mastio's own spelling
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		m.db = db
		m.q = func(s string) string {
			for i := 1; strings.Contains(s, "?"); i++ {
				s = strings.Replace(s, "?", "$"+string(rune('0'+i)), 1)
			}
			return s
		}
	}
	t.Cleanup(func() { m.db.Close() })
	for _, stmt := range strings.Split(mastioSchema, ";") {
		m.exec(t, stmt)
	}
	return m
}

func (m *mastioDB) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := m.db.Exec(m.q(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// seedPlaintext writes the CAs as proxy_config rows (Mastio without a
// passphrase).
func (m *mastioDB) seedPlaintext(t *testing.T, c *mastioCAs) {
	for _, key := range []string{c.orgKey, c.intKey} {
		for _, line := range strings.Split(key, "\n") {
			// Skip lines the certificates share (a PKCS#8 EC key also
			// carries the public key): those stay, and rightly so.
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.Contains(c.orgCert+c.intCert, line) {
				m.secrets = append(m.secrets, line)
			}
		}
	}
	for k, v := range map[string]string{"org_id": "acme", "org_ca_key": c.orgKey, "org_ca_cert": c.orgCert, "mastio_ca_key": c.intKey, "mastio_ca_cert": c.intCert} {
		m.exec(t, "INSERT INTO proxy_config (key, value) VALUES (?, ?)", k, v)
	}
}

// seedFernet writes the CAs as active pki_key_store rows (Mastio with
// MCP_PROXY_DB_ENCRYPTION_KEY), with the certificates also in proxy_config.
func (m *mastioDB) seedFernet(t *testing.T, c *mastioCAs, passphrase string) {
	for k, v := range map[string]string{"org_id": "acme", "org_ca_cert": c.orgCert, "mastio_ca_cert": c.intCert} {
		m.exec(t, "INSERT INTO proxy_config (key, value) VALUES (?, ?)", k, v)
	}
	orgCT, intCT := pythonFernet(t, passphrase, c.orgKey, c.orgCert), pythonFernet(t, passphrase, c.intKey, c.intCert)
	m.exec(t, "INSERT INTO pki_key_store (key_id, key_type, ciphertext, cert_pem, created_at, activated_at) VALUES (?, 'org_ca', ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
		"0123456789abcdef", orgCT, c.orgCert)
	m.exec(t, "INSERT INTO pki_key_store (key_id, key_type, ciphertext, cert_pem, created_at, activated_at) VALUES (?, 'intermediate_ca', ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
		"intermediate-fedcba9876543210", intCT, c.intCert)
	for _, ct := range []string{orgCT, intCT} {
		for i := len("enc:pki:v1:"); i+40 <= len(ct); i += 40 {
			m.secrets = append(m.secrets, ct[i:i+40])
		}
	}
}

// keyRows returns what the database holds where the keys were.
func (m *mastioDB) keyRows(t *testing.T) map[string]string {
	out := map[string]string{}
	rows, err := m.db.Query("SELECT key, value FROM proxy_config")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	prows, err := m.db.Query("SELECT key_id, ciphertext FROM pki_key_store")
	if err != nil {
		t.Fatal(err)
	}
	defer prows.Close()
	for prows.Next() {
		var k, v string
		if err := prows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out["pki:"+k] = v
	}
	return out
}

// migrateCLI runs `mastio-ca migrate` with no terminal on stdin.
func migrateCLI(t *testing.T, token string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), server.cli, append([]string{"migrate"}, args...)...)
	cmd.Env = append(cleanEnv(), append([]string{"VAULT_ADDR=" + server.addr, "VAULT_TOKEN=" + token}, env...)...)
	cmd.Stdin = nil // /dev/null: not a terminal
	out, err := cmd.CombinedOutput()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ mastio-ca migrate %s   (exit %d)\n%s", strings.Join(args, " "), code, out)
	return code, string(out)
}

// assertMigrated checks that the plugin holds both CAs and that a leaf it
// signs verifies with openssl against the database's Org CA through the
// intermediate.
func assertMigrated(t *testing.T, mount string, c *mastioCAs) {
	t.Helper()
	ctx := t.Context()
	cl := client.New(server.root, mount)
	org, err := cl.CA(ctx)
	if err != nil || !org.Certificate.Equal(testpki.ParseCertPEM(t, c.orgCert)) {
		t.Fatalf("plugin Org CA: %v", err)
	}
	inter, err := cl.Intermediate(ctx)
	if err != nil || !inter.Certificate.Equal(testpki.ParseCertPEM(t, c.intCert)) {
		t.Fatalf("plugin intermediate: %v", err)
	}
	signed, err := cl.SignCSR(ctx, []byte(readFile(t, agentCSR(t, c.dir, "migrated-agent"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "leaf.pem"), []byte(signed.CertificatePEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustOpenSSL(t, c.dir, "verify", "-CAfile", "org.pem", "-untrusted", "int.pem", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	if len(signed.CAChainPEM) != 2 {
		t.Fatalf("ca_chain has %d certificates, want [intermediate, Org CA]", len(signed.CAChainPEM))
	}
	assertLints(t, signed.CertificatePEM)
}

// TestMigrate_SQLiteAndPostgres migrates each database kind, with
// plaintext and with Fernet rows, then clears the keys.
func TestMigrate_SQLiteAndPostgres(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		for _, rows := range []string{"plaintext", "fernet"} {
			t.Run(kind+"-"+rows, func(t *testing.T) {
				mount := newMount(t)
				cas := makeMastioCAs(t)
				db := newMastioDB(t, kind)
				var env []string
				if rows == "plaintext" {
					db.seedPlaintext(t, cas)
				} else {
					db.seedFernet(t, cas, "mastio passphrase")
					env = []string{"MCP_PROXY_DB_ENCRYPTION_KEY=mastio passphrase"}
				}
				before := db.keyRows(t)

				// Dry run: everything checked, nothing written anywhere.
				code, out := migrateCLI(t, server.token, env, "--db", db.url, "--mount", mount, "--dry-run")
				if code != 0 || !strings.Contains(out, "Dry run: checks passed") {
					t.Fatalf("dry run: exit %d", code)
				}
				if _, err := client.New(server.root, mount).CA(t.Context()); !errors.Is(err, client.ErrNotFound) {
					t.Fatalf("the dry run wrote to the plugin: %v", err)
				}

				code, out = migrateCLI(t, server.token, env, "--db", db.url, "--mount", mount, "--yes", "--clear-db")
				if code != 0 || strings.Count(out, "proof of possession OK") != 2 {
					t.Fatalf("migrate: exit %d", code)
				}
				assertMigrated(t, mount, cas)

				after := db.keyRows(t)
				for k, v := range after {
					switch {
					case k == "org_ca_key" || k == "mastio_ca_key" || strings.HasPrefix(k, "pki:"):
						if v != "" {
							t.Errorf("%s still holds key material after --clear-db", k)
						}
					case v != before[k]:
						t.Errorf("%s changed: --clear-db must blank only key rows", k)
					}
				}
				if after["org_ca_cert"] != cas.orgCert || after["mastio_ca_cert"] != cas.intCert {
					t.Error("certificate rows were not kept")
				}
				if db.path != "" {
					// Not just blanked rows: no trace in the file's free pages.
					file, err := os.ReadFile(db.path)
					if err != nil {
						t.Fatal(err)
					}
					for _, secret := range db.secrets {
						if bytes.Contains(file, []byte(secret)) {
							t.Fatalf("the SQLite file still holds key material after --clear-db")
						}
					}
				}

				// Running again finds nothing to do.
				if code, out := migrateCLI(t, server.token, env, "--db", db.url, "--mount", mount, "--yes"); code != 0 || !strings.Contains(out, "Already migrated") {
					t.Fatalf("second run: exit %d", code)
				}
			})
		}
	}
}

// TestMigrate_Refusals: every refusal leaves the database as it was.
func TestMigrate_Refusals(t *testing.T) {
	ctx := t.Context()
	cas := makeMastioCAs(t)
	db := newMastioDB(t, "sqlite")
	db.seedPlaintext(t, cas)
	before := db.keyRows(t)
	assertDBIntact := func(t *testing.T) {
		t.Helper()
		after := db.keyRows(t)
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("database row %s changed by a refused migration", k)
			}
		}
	}

	t.Run("no terminal and no --yes", func(t *testing.T) {
		mount := newMount(t)
		code, out := migrateCLI(t, server.token, nil, "--db", db.url, "--mount", mount)
		if code != 1 || !strings.Contains(out, "pass --yes") {
			t.Fatalf("exit %d", code)
		}
		assertDBIntact(t)
	})

	t.Run("terminal prompt", func(t *testing.T) {
		// script(1) gives the CLI a real terminal; the answer comes on stdin.
		mount := newMount(t)
		prompt := func(answer string) (int, string) {
			line := strings.Join([]string{server.cli, "migrate", "--db", db.url, "--mount", mount}, " ")
			cmd := exec.CommandContext(t.Context(), "script", "-qec", line, "/dev/null")
			cmd.Env = append(cleanEnv(), "VAULT_ADDR="+server.addr, "VAULT_TOKEN="+server.token)
			cmd.Stdin = strings.NewReader(answer + "\n")
			out, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				return exitErr.ExitCode(), string(out)
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0, string(out)
		}
		if code, out := prompt("n"); code != 1 || !strings.Contains(out, "[y/N]") || !strings.Contains(out, "not confirmed") {
			t.Fatalf("answer n: exit %d\n%s", code, out)
		}
		assertDBIntact(t)
		if _, err := client.New(server.root, mount).CA(ctx); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("a declined prompt wrote to the plugin: %v", err)
		}
		if code, out := prompt("y"); code != 0 || !strings.Contains(out, "Done.") {
			t.Fatalf("answer y: exit %d\n%s", code, out)
		}
		assertMigrated(t, mount, cas)
	})

	t.Run("dry run refuses what the plugin would refuse", func(t *testing.T) {
		mount := newMount(t)
		if _, err := client.New(server.root, mount).WriteConfig(ctx, client.Config{OrgID: "other"}); err != nil {
			t.Fatal(err)
		}
		code, out := migrateCLI(t, server.token, nil, "--db", db.url, "--mount", mount, "--dry-run")
		if code != 1 || !strings.Contains(out, `config org_id is "other" but Mastio's org is "acme"`) {
			t.Fatalf("dry run with a mismatched org: exit %d", code)
		}
	})

	t.Run("different CA in the plugin, then --force", func(t *testing.T) {
		mount := newMount(t)
		if _, err := client.New(server.root, mount).Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
			t.Fatal(err)
		}
		code, out := migrateCLI(t, server.token, nil, "--db", db.url, "--mount", mount, "--yes")
		if code != 1 || !strings.Contains(out, "pass --force") {
			t.Fatalf("without --force: exit %d", code)
		}
		assertDBIntact(t)
		code, _ = migrateCLI(t, server.token, nil, "--db", db.url, "--mount", mount, "--yes", "--force")
		if code != 0 {
			t.Fatalf("with --force: exit %d", code)
		}
		assertMigrated(t, mount, cas)
		assertDBIntact(t) // no --clear-db
	})

	t.Run("token can import but not sign", func(t *testing.T) {
		mount := newMount(t)
		policy := `path "` + mount + `/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "` + mount + `/sign-csr/*" { capabilities = ["deny"] }`
		if err := server.root.Sys().PutPolicyWithContext(ctx, mount+"-importer", policy); err != nil {
			t.Fatal(err)
		}
		tok, err := server.root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{mount + "-importer"}, NoDefaultPolicy: true, TTL: "10m"})
		if err != nil {
			t.Fatal(err)
		}
		code, out := migrateCLI(t, tok.Auth.ClientToken, nil, "--db", db.url, "--mount", mount, "--yes", "--clear-db")
		if code != 2 || !strings.Contains(out, "proof of possession") || !strings.Contains(out, "The database is untouched") {
			t.Fatalf("exit %d", code)
		}
		assertDBIntact(t)
		// The temporary proof role was cleaned up.
		if roles, _ := client.New(server.root, mount).ListRoles(context.Background()); len(roles) != 2 {
			t.Fatalf("roles left behind: %v", roles)
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		mount := newMount(t)
		fdb := newMastioDB(t, "sqlite")
		fdb.seedFernet(t, cas, "right")
		code, out := migrateCLI(t, server.token, []string{"MCP_PROXY_DB_ENCRYPTION_KEY=wrong"}, "--db", fdb.url, "--mount", mount, "--yes")
		if code != 1 || !strings.Contains(out, "does not open") || strings.Contains(out, "PRIVATE KEY") {
			t.Fatalf("exit %d", code)
		}
	})

	t.Run("no database", func(t *testing.T) {
		code, out := migrateCLI(t, server.token, nil, "--db", "sqlite:////nonexistent/mcp_proxy.db", "--yes")
		if code != 1 || !strings.Contains(out, "no such file") {
			t.Fatalf("exit %d", code)
		}
	})
}

// migratePolicy is the least-privilege policy docs/migration.md gives the
// operator who runs migrate, with the mount name substituted.
const migratePolicy = `
path "MOUNT/config"                 { capabilities = ["read"] }
path "MOUNT/cert"                   { capabilities = ["read"] }
path "MOUNT/intermediate/cert"      { capabilities = ["read"] }
path "MOUNT/import"                 { capabilities = ["update"] }
path "MOUNT/intermediate/import"    { capabilities = ["update"] }
path "MOUNT/roles/mastio-ca-migrate-proof-*"    { capabilities = ["create", "update", "delete"] }
path "MOUNT/sign-csr/mastio-ca-migrate-proof-*" { capabilities = ["update"] }
`

// TestMigrate_LeastPrivilegeToken migrates with exactly the documented
// policy, so the guide cannot drift from what the CLI needs.
func TestMigrate_LeastPrivilegeToken(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	cas := makeMastioCAs(t)
	db := newMastioDB(t, "sqlite")
	db.seedPlaintext(t, cas)
	if err := server.root.Sys().PutPolicyWithContext(ctx, mount+"-migrate", strings.ReplaceAll(migratePolicy, "MOUNT", mount)); err != nil {
		t.Fatal(err)
	}
	tok, err := server.root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{mount + "-migrate"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := migrateCLI(t, tok.Auth.ClientToken, nil, "--db", db.url, "--mount", mount, "--yes", "--clear-db")
	if code != 0 {
		t.Fatalf("migrate with the documented policy: exit %d", code)
	}
	assertMigrated(t, mount, cas)
	guide := readFile(t, filepath.Join("..", "..", "docs", "migration.md"))
	for _, line := range strings.Split(strings.TrimSpace(strings.ReplaceAll(migratePolicy, "MOUNT", "mastio-ca")), "\n") {
		if !strings.Contains(guide, line) {
			t.Errorf("docs/migration.md lacks the policy line %q this test proves", line)
		}
	}
}
