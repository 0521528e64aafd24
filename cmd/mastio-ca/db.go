package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/fernet/fernet-go"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite", pure Go
)

// dbTarget is Mastio's database, as named by MCP_PROXY_DATABASE_URL.
type dbTarget struct {
	driver string // "sqlite" or "pgx"
	dsn    string
	path   string // SQLite file, for messages
	shown  string // the URL without a password, for messages
}

// parseDBURL accepts Mastio's SQLAlchemy URLs as they are
// (sqlite+aiosqlite:////data/mcp_proxy.db, postgresql+asyncpg://...) and
// plain sqlite:///path, postgres:// and postgresql:// URLs.
func parseDBURL(raw string) (*dbTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("database URL %q has no scheme: use sqlite:///path/to/mcp_proxy.db or postgres://user@host/db", redactURL(raw))
	}
	base, _, _ := strings.Cut(scheme, "+") // drop SQLAlchemy's async driver
	switch base {
	case "sqlite":
		// SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db.
		path, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "?")
		if path == "" || path == ":memory:" {
			return nil, fmt.Errorf("database URL %q names no SQLite file", raw)
		}
		return &dbTarget{driver: "sqlite", path: path, shown: "sqlite:///" + path}, nil
	case "postgres", "postgresql":
		u, err := url.Parse("postgres://" + rest)
		if err != nil {
			// url's error quotes the URL, password included: say less.
			return nil, errors.New("database URL is not a valid PostgreSQL URL: check its user, password (percent-encoded), host and database parts")
		}
		// asyncpg spells TLS as ssl=...; libpq and pgx as sslmode=....
		q := u.Query()
		if v := q.Get("ssl"); v != "" {
			q.Del("ssl")
			if q.Get("sslmode") == "" {
				switch v {
				case "true", "require":
					q.Set("sslmode", "require")
				case "false", "disable":
					q.Set("sslmode", "disable")
				default: // prefer, allow, verify-ca, verify-full
					q.Set("sslmode", v)
				}
			}
			u.RawQuery = q.Encode()
		}
		return &dbTarget{driver: "pgx", dsn: u.String(), shown: redactURL(u.String())}, nil
	}
	return nil, fmt.Errorf("database URL scheme %q is not supported: use sqlite or postgresql", scheme)
}

// redactURL hides a password in a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// open connects; readOnly opens a SQLite file read-only. A missing SQLite
// file is an error rather than a new empty database.
func (t *dbTarget) open(ctx context.Context, readOnly bool) (*sql.DB, error) {
	dsn := t.dsn
	if t.driver == "sqlite" {
		if _, err := os.Stat(t.path); err != nil {
			return nil, fmt.Errorf("SQLite database %s: %w", t.path, err)
		}
		query := "mode=ro&_pragma=busy_timeout(5000)"
		if !readOnly {
			// secure_delete zeroes the bytes of a blanked value instead of
			// leaving them in the file's free space.
			query = "mode=rw&_pragma=busy_timeout(5000)&_pragma=secure_delete(1)"
		}
		dsn = (&url.URL{Scheme: "file", Opaque: t.path, RawQuery: query}).String()
	}
	db, err := sql.Open(t.driver, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", t.shown, err)
	}
	return db, nil
}

// placeholder is the n-th bind parameter in the target's SQL dialect.
func (t *dbTarget) placeholder(n int) string {
	if t.driver == "pgx" {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// Mastio's names for its two CAs.
const (
	kindOrg          = "org_ca"
	kindIntermediate = "intermediate_ca"
)

// dbCA is one CA as Mastio's database holds it.
type dbCA struct {
	kind    string // kindOrg or kindIntermediate
	keyPEM  string
	certPEM string
	// source says where the key came from: "proxy_config" (plaintext rows)
	// or "pki_key_store" (Fernet-encrypted row keyID).
	source     string
	keyID      string
	ciphertext string // the pki_key_store value, to clear only if unchanged
	// configCert is proxy_config's certificate row, which Mastio keeps
	// reading after a migration ("" when absent).
	configCert string
}

// proxyConfigKeys are the proxy_config rows of each CA: key row, cert row.
var proxyConfigKeys = map[string][2]string{
	kindOrg:          {"org_ca_key", "org_ca_cert"},
	kindIntermediate: {"mastio_ca_key", "mastio_ca_cert"},
}

// errNoKey says the database holds a CA's certificate but not its key.
var errNoKey = errors.New("no key")

// readCAs reads both CAs. A kind absent from the database is left out; a
// kind whose certificate is there but whose key rows are empty gets
// errNoKey in missing. passphrase decrypts pki_key_store rows.
func readCAs(ctx context.Context, db *sql.DB, t *dbTarget, passphrase string) (found map[string]*dbCA, missing map[string]error, err error) {
	config := map[string]string{}
	rows, err := db.QueryContext(ctx, "SELECT key, value FROM proxy_config WHERE key IN ('org_ca_key', 'org_ca_cert', 'mastio_ca_key', 'mastio_ca_cert')")
	if err != nil {
		return nil, nil, fmt.Errorf("reading proxy_config (is this Mastio's database?): %w", err)
	}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, nil, err
		}
		config[k] = v.String
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}

	stored, err := readKeyStore(ctx, db, t)
	if err != nil {
		return nil, nil, err
	}

	var fk *fernet.Key // derived once: PBKDF2 with 600000 rounds is slow
	found, missing = map[string]*dbCA{}, map[string]error{}
	for _, kind := range []string{kindOrg, kindIntermediate} {
		names := proxyConfigKeys[kind]
		ca := &dbCA{kind: kind, configCert: strings.TrimSpace(config[names[1]])}
		switch row, ok := stored[kind]; {
		case ok && row.ciphertext != "":
			if passphrase == "" {
				return nil, nil, fmt.Errorf("pki_key_store holds the %s encrypted, and MCP_PROXY_DB_ENCRYPTION_KEY is not set", kindLabel(kind))
			}
			if fk == nil {
				if fk, err = pkiFernetKey(passphrase); err != nil {
					return nil, nil, err
				}
			}
			key, cert, err := decryptPKIRow(row.ciphertext, fk)
			if err != nil {
				return nil, nil, fmt.Errorf("pki_key_store row %s (%s): %w", row.keyID, kindLabel(kind), err)
			}
			if row.certPEM != "" && strings.TrimSpace(row.certPEM) != strings.TrimSpace(cert) {
				return nil, nil, fmt.Errorf("pki_key_store row %s: the cert_pem column differs from the certificate inside the ciphertext", row.keyID)
			}
			ca.keyPEM, ca.certPEM, ca.source, ca.keyID, ca.ciphertext = key, cert, "pki_key_store", row.keyID, row.ciphertext
		case strings.TrimSpace(config[names[0]]) != "":
			ca.keyPEM, ca.certPEM, ca.source = config[names[0]], ca.configCert, "proxy_config"
		case ca.configCert != "" || ok:
			if ca.configCert == "" {
				ca.configCert = row.certPEM
			}
			ca.certPEM = ca.configCert
			found[kind] = ca
			missing[kind] = errNoKey
			continue
		default:
			continue
		}
		if strings.TrimSpace(ca.certPEM) == "" {
			return nil, nil, fmt.Errorf("the database holds the %s key but not its certificate", kindLabel(kind))
		}
		if ca.configCert != "" && strings.TrimSpace(ca.configCert) != strings.TrimSpace(ca.certPEM) {
			return nil, nil, fmt.Errorf("proxy_config %s differs from the certificate of the %s key: the database disagrees with itself", names[1], kindLabel(kind))
		}
		found[kind] = ca
	}
	return found, missing, nil
}

// readOrgID returns proxy_config's org_id row, "" when absent.
func readOrgID(ctx context.Context, db *sql.DB) (string, error) {
	var v sql.NullString
	err := db.QueryRowContext(ctx, "SELECT value FROM proxy_config WHERE key = 'org_id'").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading proxy_config org_id: %w", err)
	}
	return strings.TrimSpace(v.String), nil
}

// keyStoreRow is the active pki_key_store row of one kind.
type keyStoreRow struct {
	keyID, ciphertext, certPEM string
}

// readKeyStore returns the active row of each kind (activated and not
// deprecated); the table is optional (older Mastio).
func readKeyStore(ctx context.Context, db *sql.DB, t *dbTarget) (map[string]keyStoreRow, error) {
	exists, err := tableExists(ctx, db, t, "pki_key_store")
	if err != nil || !exists {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT key_id, key_type, ciphertext, cert_pem FROM pki_key_store WHERE activated_at IS NOT NULL AND deprecated_at IS NULL AND key_type IN ('org_ca', 'intermediate_ca')")
	if err != nil {
		return nil, fmt.Errorf("reading pki_key_store: %w", err)
	}
	defer rows.Close()
	out := map[string]keyStoreRow{}
	for rows.Next() {
		var id, kind string
		var ct, cert sql.NullString
		if err := rows.Scan(&id, &kind, &ct, &cert); err != nil {
			return nil, err
		}
		if prev, dup := out[kind]; dup {
			return nil, fmt.Errorf("pki_key_store has two active %s rows (%s, %s): deprecate one first", kind, prev.keyID, id)
		}
		out[kind] = keyStoreRow{keyID: id, ciphertext: ct.String, certPEM: cert.String}
	}
	return out, rows.Err()
}

func tableExists(ctx context.Context, db *sql.DB, t *dbTarget, table string) (bool, error) {
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = " + t.placeholder(1)
	if t.driver == "pgx" {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = " + t.placeholder(1)
	}
	var n int
	if err := db.QueryRowContext(ctx, q, table).Scan(&n); err != nil {
		return false, fmt.Errorf("looking for table %s: %w", table, err)
	}
	return n > 0, nil
}

// clearKeys blanks the key rows of the migrated CAs in one transaction: the
// proxy_config key rows and the pki_key_store ciphertext, each only if it
// still holds what was migrated (a key Mastio rotated in meanwhile is never
// destroyed). Certificate rows stay: Mastio still reads
// proxy_config.org_ca_cert. Then it compacts, so the old values do not
// linger in free pages; see compact.
func clearKeys(ctx context.Context, db *sql.DB, t *dbTarget, cas []*dbCA) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, ca := range cas {
		var res sql.Result
		switch ca.source {
		case "proxy_config":
			res, err = tx.ExecContext(ctx, "UPDATE proxy_config SET value = '' WHERE key = "+t.placeholder(1)+" AND value = "+t.placeholder(2), proxyConfigKeys[ca.kind][0], ca.keyPEM)
		case "pki_key_store":
			res, err = tx.ExecContext(ctx, "UPDATE pki_key_store SET ciphertext = '' WHERE key_id = "+t.placeholder(1)+" AND ciphertext = "+t.placeholder(2), ca.keyID, ca.ciphertext)
		default:
			return fmt.Errorf("unknown source %q", ca.source)
		}
		if err != nil {
			return fmt.Errorf("clearing the %s key: %w", kindLabel(ca.kind), err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("the %s key row changed since it was read (%d rows match, want 1): rolled back, nothing cleared", kindLabel(ca.kind), n)
		}
		// A plaintext copy may also sit in proxy_config next to the
		// encrypted row; blank it too so no copy of the key is left.
		if ca.source == "pki_key_store" {
			if _, err := tx.ExecContext(ctx, "UPDATE proxy_config SET value = '' WHERE key = "+t.placeholder(1), proxyConfigKeys[ca.kind][0]); err != nil {
				return fmt.Errorf("clearing proxy_config %s: %w", proxyConfigKeys[ca.kind][0], err)
			}
		}
	}
	return tx.Commit()
}

// compact rewrites what the database keeps of blanked values where it can:
// SQLite is vacuumed and its WAL truncated (the file then holds no trace of
// them); PostgreSQL's two tables get VACUUM FULL, which needs their owner.
// PostgreSQL's WAL, archives, replicas and every earlier backup keep the
// old values until they expire: that is the operator's to handle.
func compact(ctx context.Context, db *sql.DB, t *dbTarget) error {
	stmts := []string{"VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"}
	if t.driver == "pgx" {
		stmts = []string{"VACUUM FULL proxy_config", "VACUUM FULL pki_key_store"}
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// deprecatedKeyRows lists retired pki_key_store rows that still hold a
// ciphertext; migrate does not move or clear them.
func deprecatedKeyRows(ctx context.Context, db *sql.DB, t *dbTarget) ([]string, error) {
	exists, err := tableExists(ctx, db, t, "pki_key_store")
	if err != nil || !exists {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT key_id FROM pki_key_store WHERE deprecated_at IS NOT NULL AND ciphertext <> ''")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func kindLabel(kind string) string {
	if kind == kindIntermediate {
		return "Mastio Intermediate CA"
	}
	return "Org CA"
}

// pkiPayload is the JSON inside a pki_key_store ciphertext.
type pkiPayload struct {
	KeyPEM  string `json:"key_pem"`
	CertPEM string `json:"cert_pem"`
}

func decodePKIPayload(plain []byte) (string, string, error) {
	var p pkiPayload
	if err := json.Unmarshal(plain, &p); err != nil {
		return "", "", fmt.Errorf("decrypted payload is not the expected JSON {key_pem, cert_pem}")
	}
	if p.KeyPEM == "" || p.CertPEM == "" {
		return "", "", fmt.Errorf("decrypted payload lacks key_pem or cert_pem")
	}
	return p.KeyPEM, p.CertPEM, nil
}
