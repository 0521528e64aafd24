package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/term"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Exit codes of migrate (also in its usage text and docs/migration.md).
const (
	exitOK           = 0
	exitPrecondition = 1 // nothing was written anywhere
	exitVerification = 2 // import or proof failed: database untouched
)

const migrateUsage = `Usage: mastio-ca migrate [flags]

Moves Mastio's Org CA (and Mastio Intermediate CA, when present) from
Mastio's database into the mastio-ca plugin, then proves that the plugin
holds each key by having it sign a throw-away CSR, checked against the
database's certificate. The key is never read back from Vault.

Mastio's database is read from proxy_config (plaintext rows) or
pki_key_store (Fernet rows, opened with MCP_PROXY_DB_ENCRYPTION_KEY).
Vault is reached through VAULT_ADDR, VAULT_TOKEN and VAULT_CACERT.

Flags:
`

const migrateExitCodes = `
Exit codes:
  0  migrated and verified (or already migrated; or a clean dry run)
  1  a precondition failed: nothing was written to Vault or the database
  2  the import or the proof of possession failed: the database is untouched
     (the plugin may hold the CA; running again is safe)
`

type migrateOptions struct {
	dbURL    string
	mount    string
	dryRun   bool
	yes      bool
	force    bool
	clearDB  bool
	kvExport bool
}

// migrateEnv is what migrate takes from its surroundings, for tests.
type migrateEnv struct {
	getenv func(string) string
	stdin  io.Reader
	isTTY  bool
	stdout io.Writer
	stderr io.Writer
}

func runMigrate(ctx context.Context, args []string, env migrateEnv) int {
	fs := subcommand("migrate", migrateUsage, migrateExitCodes, env.stderr)
	var o migrateOptions
	// The default is read after parsing, not shown as a flag default: the
	// URL may carry the database password, and usage text is printed.
	fs.StringVar(&o.dbURL, "db", "", "Mastio's database: its MCP_PROXY_DATABASE_URL as it is (sqlite+aiosqlite:////data/mcp_proxy.db,\npostgresql+asyncpg://...), or sqlite:///path, postgres://... (default $MCP_PROXY_DATABASE_URL)")
	fs.StringVar(&o.mount, "mount", "mastio-ca", "path the plugin is mounted at")
	fs.BoolVar(&o.dryRun, "dry-run", false, "read and check everything, write nothing anywhere")
	fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation (required without a terminal)")
	fs.BoolVar(&o.force, "force", false, "replace a different CA already in the plugin")
	fs.BoolVar(&o.clearDB, "clear-db", false, "after the proof, blank the key rows in Mastio's database (certificates stay)")
	fs.BoolVar(&o.kvExport, "kv-export", false, "let the plugin's KV mirror serve the keys, for a cut-over with Mastio's\nexisting Vault provider (turn off for good later: vault write <mount>/kv-export/org-ca kv_export=false)")
	if code, stop := parse(fs, args, exitPrecondition); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "mastio-ca migrate: unexpected argument %q\n", fs.Arg(0))
		return exitPrecondition
	}
	if o.dbURL == "" {
		o.dbURL = env.getenv("MCP_PROXY_DATABASE_URL")
	}
	m := &migration{opts: o, env: env}
	return m.run(ctx)
}

// migration is one run of migrate.
type migration struct {
	opts migrateOptions
	env  migrateEnv
}

func (m *migration) say(format string, args ...any) {
	fmt.Fprintf(m.env.stdout, format+"\n", args...)
}

func (m *migration) fail(code int, format string, args ...any) int {
	fmt.Fprintf(m.env.stderr, "mastio-ca migrate: "+format+"\n", args...)
	switch code {
	case exitPrecondition:
		fmt.Fprintln(m.env.stderr, "Nothing was written to Vault or to the database.")
	case exitVerification:
		fmt.Fprintln(m.env.stderr, "The database is untouched. The plugin may hold the CA; running migrate again is safe.")
	}
	return code
}

// planned is one CA to migrate and what the plugin holds of it now.
type planned struct {
	db      *dbCA
	cert    *x509.Certificate
	fp      string // sha256 of the certificate DER, hex
	current *client.CA
	cas     *int // set when --force replaces a different CA
}

func (m *migration) run(ctx context.Context) int {
	o := m.opts
	if o.dbURL == "" {
		return m.fail(exitPrecondition, "no database: pass --db or set MCP_PROXY_DATABASE_URL")
	}
	if o.dryRun && o.clearDB {
		return m.fail(exitPrecondition, "--dry-run and --clear-db exclude each other")
	}
	target, err := parseDBURL(o.dbURL)
	if err != nil {
		return m.fail(exitPrecondition, "%v", err)
	}
	db, err := target.open(ctx, !o.clearDB)
	if err != nil {
		return m.fail(exitPrecondition, "%v", err)
	}
	defer db.Close()
	m.say("Database: %s", target.shown)

	found, missing, err := readCAs(ctx, db, target, m.env.getenv("MCP_PROXY_DB_ENCRYPTION_KEY"))
	if err != nil {
		return m.fail(exitPrecondition, "%v", err)
	}
	orgIDRow, err := readOrgID(ctx, db)
	if err != nil {
		return m.fail(exitPrecondition, "%v", err)
	}
	if found[kindOrg] == nil {
		return m.fail(exitPrecondition, "the database holds no Org CA (proxy_config org_ca_key/org_ca_cert or an active pki_key_store org_ca row)")
	}

	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		return m.fail(exitPrecondition, "Vault client: %v", err)
	}
	if vault.Token() == "" {
		return m.fail(exitPrecondition, "VAULT_TOKEN is not set")
	}
	c := client.New(vault, o.mount)
	cfg, err := c.Config(ctx)
	if err != nil {
		return m.fail(exitPrecondition, "reading %s/config at %s: %v (is the plugin enabled there?)", o.mount, vault.Address(), err)
	}
	m.say("Vault:    %s, mount %s/ (trust domain %s)", vault.Address(), o.mount, cfg.TrustDomain)

	orgCert, err := parseCert(found[kindOrg].certPEM)
	if err != nil {
		return m.fail(exitPrecondition, "the Org CA certificate in the database: %v", err)
	}
	orgID := orgIDRow
	if orgID == "" && len(orgCert.Subject.Organization) == 1 {
		orgID = orgCert.Subject.Organization[0]
	}
	if orgID == "" {
		return m.fail(exitPrecondition, "the database has no proxy_config org_id row and the Org CA certificate no single O: the org is unknown")
	}

	var plan []*planned
	for _, kind := range []string{kindOrg, kindIntermediate} {
		ca := found[kind]
		if ca == nil {
			continue
		}
		p, code := m.check(ctx, c, ca, missing[kind], orgCert)
		if code != exitOK {
			return code
		}
		if p != nil {
			plan = append(plan, p)
		}
	}
	if len(plan) > 0 && plan[0].db.kind == kindOrg {
		org := plan[0]
		switch {
		case org.current == nil && cfg.OrgID != "" && cfg.OrgID != orgID:
			return m.fail(exitPrecondition, "the plugin's config org_id is %q but Mastio's org is %q: fix %s/config first", cfg.OrgID, orgID, o.mount)
		case org.cas != nil && found[kindIntermediate] == nil:
			if _, err := c.Intermediate(ctx); err == nil {
				m.say("  WARNING: the plugin's intermediate was signed by the Org CA being replaced and will refuse to sign: generate or import a new one")
			}
		}
	}
	if len(plan) == 0 {
		m.say("Already migrated: the plugin holds every CA of the database and the database holds no key. Nothing to do.")
		return exitOK
	}

	if o.dryRun {
		caps, err := vault.Sys().CapabilitiesSelfWithContext(ctx, o.mount+"/import")
		if err == nil {
			m.say("Token capabilities on %s/import: %s", o.mount, strings.Join(caps, ", "))
		}
		m.say("Dry run: checks passed; nothing was written. Run again without --dry-run to migrate.")
		return exitOK
	}
	if !o.yes {
		if !m.env.isTTY {
			return m.fail(exitPrecondition, "no terminal to confirm on: pass --yes")
		}
		fmt.Fprintf(m.env.stdout, "Import %d CA(s) into %s/%s? [y/N] ", len(plan), vault.Address(), o.mount)
		line, _ := bufio.NewReader(m.env.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return m.fail(exitPrecondition, "not confirmed")
		}
	}

	for _, p := range plan {
		req := client.ImportRequest{KeyPEM: p.db.keyPEM, CertPEM: p.db.certPEM, KVExport: o.kvExport, CAS: p.cas}
		var res *client.ImportResult
		if p.db.kind == kindOrg {
			req.OrgID = orgIDRow
			res, err = c.Import(ctx, req)
		} else {
			res, err = c.ImportIntermediate(ctx, req)
		}
		if err != nil {
			return m.fail(exitVerification, "importing the %s: %v", kindLabel(p.db.kind), err)
		}
		if res.FingerprintSHA256 != p.fp {
			return m.fail(exitVerification, "the plugin reports fingerprint %s for the %s, the database's is %s", res.FingerprintSHA256, kindLabel(p.db.kind), p.fp)
		}
		verb := "imported"
		if res.Unchanged {
			verb = "already held, unchanged"
		}
		m.say("%s: %s (version %d, kv_export %v)", kindLabel(p.db.kind), verb, res.Version, res.KVExport)
	}

	for _, p := range plan {
		if err := m.prove(ctx, c, p); err != nil {
			return m.fail(exitVerification, "proof of possession of the %s failed: %v", kindLabel(p.db.kind), err)
		}
	}

	if o.clearDB {
		var cas []*dbCA
		for _, p := range plan {
			if p.db.keyPEM != "" {
				cas = append(cas, p.db)
			}
		}
		if err := clearKeys(ctx, db, target, cas); err != nil {
			return m.fail(exitVerification, "clearing the database: %v", err)
		}
		for _, ca := range cas {
			m.say("Database: blanked the %s key (%s); its certificate rows stay", kindLabel(ca.kind), describeSource(ca))
		}
		if err := compact(ctx, db, target); err != nil {
			m.say("  WARNING: could not compact the database (%v): the blanked values may linger in free pages until the next VACUUM", err)
		} else {
			m.say("Database: compacted, so the blanked values do not linger in free pages")
		}
		if target.driver == "pgx" {
			m.say("  Note: PostgreSQL's WAL, archives, replicas and earlier backups still hold the old keys until they expire.")
		}
	} else {
		m.say("The database still holds the keys: once Mastio runs on the plugin, run again with --clear-db.")
	}
	if ids, err := deprecatedKeyRows(ctx, db, target); err == nil && len(ids) > 0 {
		m.say("  Note: pki_key_store still holds %d retired key(s) that migrate neither moves nor clears: %s", len(ids), strings.Join(ids, ", "))
	}
	m.say("Done.")
	return exitOK
}

// check validates one database CA and compares it with the plugin. It
// returns nil when there is nothing to do for it.
func (m *migration) check(ctx context.Context, c *client.Client, ca *dbCA, missing error, orgCert *x509.Certificate) (*planned, int) {
	label := kindLabel(ca.kind)
	cert, err := parseCert(ca.certPEM)
	if err != nil {
		return nil, m.fail(exitPrecondition, "the %s certificate in the database: %v", label, err)
	}
	p := &planned{db: ca, cert: cert, fp: sha256Hex(cert.Raw)}
	var current *client.CA
	if ca.kind == kindIntermediate {
		var in *client.Intermediate
		if in, err = c.Intermediate(ctx); err == nil {
			current = in.CA
		}
	} else {
		current, err = c.CA(ctx)
	}
	switch {
	case errors.Is(err, client.ErrNotFound):
	case err != nil:
		return nil, m.fail(exitPrecondition, "reading the plugin's %s: %v", label, err)
	default:
		p.current = current
	}
	same := p.current != nil && p.current.FingerprintSHA256 == p.fp

	if errors.Is(missing, errNoKey) {
		if same {
			m.say("%s: already migrated (sha256 %s); the database holds only its certificate", label, p.fp)
			return nil, exitOK
		}
		return nil, m.fail(exitPrecondition, "the database holds the %s certificate but not its key, and the plugin does not hold that CA", label)
	}
	// The plugin's own import checks, so a dry run refuses what it would:
	// for the intermediate also that the Org CA signed it, may have it
	// (pathLen) and outlives it.
	ic, err := issuing.ValidateImport(ca.keyPEM, ca.certPEM, "", time.Now())
	if err == nil && ca.kind == kindIntermediate {
		err = ic.CheckIntermediateOf(orgCert, nil)
	}
	if err != nil {
		return nil, m.fail(exitPrecondition, "the %s in the database would be refused by the plugin: %v", label, err)
	}
	m.say("%s: %s, %s key, sha256 %s, valid until %s, from %s", label, cert.Subject, keyDescription(cert), p.fp, cert.NotAfter.UTC().Format(time.RFC3339), describeSource(ca))
	switch {
	case p.current == nil:
		m.say("  plugin: empty; will import")
	case same:
		m.say("  plugin: holds this CA already (version %d); will re-import idempotently and prove it", p.current.Version)
	case m.opts.force:
		v := p.current.Version
		p.cas = &v
		m.say("  plugin: holds a DIFFERENT CA (sha256 %s, version %d); --force: will replace it", p.current.FingerprintSHA256, v)
	default:
		return nil, m.fail(exitPrecondition, "the plugin already holds a different %s (sha256 %s, version %d); pass --force to replace it", label, p.current.FingerprintSHA256, p.current.Version)
	}
	return p, exitOK
}

// prove has the plugin sign a throw-away CSR with the CA of p, under a
// temporary role pinned to that CA, and checks the certificate against the
// database's CA certificate. The throw-away key never leaves this process
// and the certificate lives one minute.
func (m *migration) prove(ctx context.Context, c *client.Client, p *planned) error {
	issuer := "org-ca"
	if p.db.kind == kindIntermediate {
		issuer = "intermediate-ca"
	}
	signed, err := proveKey(ctx, c, issuer, "mastio-ca-migrate-proof", p.cert, m.env.stderr)
	if err != nil {
		return err
	}
	m.say("%s: proof of possession OK: the plugin signed serial %s, verified against the database's certificate", kindLabel(p.db.kind), signed.SerialNumber)
	return nil
}

// parseCert reads the first certificate of a PEM text, as the plugin does.
func parseCert(s string) (*x509.Certificate, error) {
	certs, err := issuing.ParseCertificatesPEM("the certificate", s)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func keyDescription(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	default:
		return cert.PublicKeyAlgorithm.String()
	}
}

func describeSource(ca *dbCA) string {
	if ca.source == "pki_key_store" {
		return "pki_key_store row " + ca.keyID + " (encrypted)"
	}
	return "proxy_config (plaintext)"
}

// stdinIsTerminal reports whether standard input is a terminal (not merely
// a character device such as /dev/null).
func stdinIsTerminal() bool {
	return term.IsTerminal(int(os.Stdin.Fd()))
}
