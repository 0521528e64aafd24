package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

const benchUsage = `Usage: mastio-ca bench [flags]

Measures, in one run and interleaved so that they share the machine's
conditions, three ways to sign the same P-256 agent CSRs:

  A  mastio-ca sign-csr through Vault's HTTP API
  B  Vault's builtin PKI sign/<role> on the same server (same CA key type,
     role with no_store=true and generate_lease=false)
  C  the in-process floor: the plugin's signing function called directly

at each concurrency, plus RSA-2048 and RSA-4096 CAs (A, B and C at
concurrency 8) and batches of 10 and 100 CSRs per request. It creates its
own mounts (mastio-ca must be registered in the catalog) and removes them.
Vault is reached through VAULT_ADDR and VAULT_TOKEN.

With --hsm-mount, at concurrency 8 and interleaved:

  H  sign-csr on that mount, whose intermediate's key (EC P-256) is in a
     PKCS#11 token (the plugin's PKCS#11 build; make bench makes one in
     SoftHSM2 with scripts/dev.sh DEV_PKCS11=1)
  A  beside it, sign-csr on a mount of the same plugin build made here,
     with the same CAs (EC P-256 Org CA and intermediate) and the
     intermediate's key in Vault: only where the key is differs

Flags:
`

// Markers around the table bench writes into a markdown file.
const (
	benchStart = "<!-- mastio-ca bench: start -->"
	benchEnd   = "<!-- mastio-ca bench: end -->"
)

type benchOptions struct {
	duration    time.Duration
	concurrency []int
	out         string
	plugin      string
	rsa         bool
	batches     bool
	hsmMount    string
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommand("bench", benchUsage, "", stderr)
	var o benchOptions
	var levels string
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "time spent on each scenario at each concurrency (split into 3 interleaved rounds)")
	fs.StringVar(&levels, "concurrency", "1,8,32", "concurrency levels")
	fs.StringVar(&o.out, "out", "", "markdown file whose bench section (between marker comments) is replaced by the table")
	fs.StringVar(&o.plugin, "plugin", "mastio-ca", "the plugin's name in Vault's catalog")
	fs.BoolVar(&o.rsa, "rsa", true, "also measure RSA-2048 and RSA-4096 CAs at concurrency 8")
	fs.BoolVar(&o.batches, "batches", true, "also measure batches of 10 and 100 CSRs at concurrency 8")
	fs.StringVar(&o.hsmMount, "hsm-mount", "", "a mount of the PKCS#11 build whose intermediate's key (EC P-256, org_id acme) is in its token: also measure sign-csr with that key beside the key in Vault, at concurrency 8 (make bench: mastio-ca-hsm)")
	if code, stop := parse(fs, args, 1); stop {
		return code
	}
	o.hsmMount = strings.Trim(o.hsmMount, "/")
	for _, l := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 || n > 1024 {
			fmt.Fprintf(stderr, "mastio-ca bench: bad concurrency %q\n", l)
			return 1
		}
		o.concurrency = append(o.concurrency, n)
	}
	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil || vault.Token() == "" {
		fmt.Fprintf(stderr, "mastio-ca bench: set VAULT_ADDR and VAULT_TOKEN (%v)\n", err)
		return 1
	}
	// Many concurrent connections to one server.
	vault.SetMaxRetries(0)
	table, err := bench(ctx, vault, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mastio-ca bench: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, table)
	if o.out != "" {
		if err := replaceSection(o.out, table); err != nil {
			fmt.Fprintf(stderr, "mastio-ca bench: %v\n", err)
			return 1
		}
	}
	return 0
}

// benchStats summarises one scenario at one concurrency.
type benchStats struct {
	ops, errors int64
	elapsed     time.Duration
	latencies   []time.Duration
	certsPerOp  int
}

func (s *benchStats) add(o *benchStats) {
	s.ops += o.ops
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
}

// perSecond is certificates per second.
func (s *benchStats) perSecond() float64 {
	if s.elapsed == 0 {
		return 0
	}
	return float64(s.ops*int64(s.certsPerOp)) / s.elapsed.Seconds()
}

func (s *benchStats) percentile(p float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	return s.latencies[int(p*float64(len(s.latencies)-1))]
}

// drive runs op at the given concurrency for d and records every latency.
func drive(ctx context.Context, workers int, d time.Duration, op func(i int) error) *benchStats {
	var next atomic.Int64
	var mu sync.Mutex
	st := &benchStats{certsPerOp: 1}
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var ops, errs int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := op(int(next.Add(1)))
				lat = append(lat, time.Since(t0))
				ops++
				if err != nil {
					errs++
				}
			}
			mu.Lock()
			st.latencies = append(st.latencies, lat...)
			st.ops += ops
			st.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// benchCSRs makes a pool of P-256 agent CSRs.
func benchCSRs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("bench-%d", i)
		u := &url.URL{Scheme: "spiffe", Host: "cullis.local", Path: "/acme/" + name}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "acme::" + name}, URIs: []*url.URL{u}}, key)
		if err != nil {
			return nil, err
		}
		out[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	return out, nil
}

// benchTarget is a mastio-ca mount and a PKI mount with CAs of one key type.
type benchTarget struct {
	label         string
	mastio, pki   string
	keyType       string
	keyBits       int
	pkiSignPath   string
	floor         func(string) ([]byte, error)
	vault         *api.Client
	cleanupMounts []string
}

func setupTarget(ctx context.Context, vault *api.Client, plugin, label, keyType string, keyBits int) (*benchTarget, error) {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	t := &benchTarget{label: label, keyType: keyType, keyBits: keyBits, vault: vault,
		mastio: "bench-mastio-" + hex.EncodeToString(suffix), pki: "bench-pki-" + hex.EncodeToString(suffix)}
	if err := vault.Sys().MountWithContext(ctx, t.mastio, &api.MountInput{Type: plugin}); err != nil {
		return nil, fmt.Errorf("enabling %s: %w", plugin, err)
	}
	t.cleanupMounts = append(t.cleanupMounts, t.mastio)
	if _, err := client.New(vault, t.mastio).Generate(ctx, client.GenerateRequest{OrgID: "acme", KeyType: keyType, KeyBits: keyBits}); err != nil {
		return t, err
	}
	if err := vault.Sys().MountWithContext(ctx, t.pki, &api.MountInput{Type: "pki", Config: api.MountConfigInput{MaxLeaseTTL: "131400h"}}); err != nil {
		return t, fmt.Errorf("enabling pki: %w", err)
	}
	t.cleanupMounts = append(t.cleanupMounts, t.pki)
	if _, err := vault.Logical().WriteWithContext(ctx, t.pki+"/root/generate/internal", map[string]any{
		"common_name": "acme CA", "key_type": keyType, "key_bits": keyBits, "ttl": "131400h",
	}); err != nil {
		return t, fmt.Errorf("pki root: %w", err)
	}
	if _, err := vault.Logical().WriteWithContext(ctx, t.pki+"/roles/bench", map[string]any{
		"allow_any_name": true, "enforce_hostnames": false, "allowed_uri_sans": "spiffe://*",
		"no_store": true, "generate_lease": false, "key_type": "any", "ttl": "8760h", "max_ttl": "8760h",
	}); err != nil {
		return t, fmt.Errorf("pki role: %w", err)
	}
	t.pkiSignPath = t.pki + "/sign/bench"
	floor, err := issuing.InProcessSigner(keyType, keyBits)
	if err != nil {
		return t, err
	}
	t.floor = floor
	return t, nil
}

func (t *benchTarget) cleanup() {
	for _, m := range t.cleanupMounts {
		_ = t.vault.Sys().Unmount(m)
	}
}

// opA and opB send the same request through the same client code, so the
// load generator costs both the same and only the server side differs.
func (t *benchTarget) opA(ctx context.Context, csrs []string) func(int) error {
	return signOp(ctx, t.vault, t.mastio+"/sign-csr", csrs)
}

func (t *benchTarget) opB(ctx context.Context, csrs []string) func(int) error {
	return signOp(ctx, t.vault, t.pkiSignPath, csrs)
}

// signOp writes {"csr": ...} to path and checks that a certificate came back.
func signOp(ctx context.Context, vault *api.Client, path string, csrs []string) func(int) error {
	return func(i int) error {
		s, err := vault.Logical().WriteWithContext(ctx, path, map[string]any{"csr": csrs[i%len(csrs)]})
		if err != nil {
			return err
		}
		if s == nil || s.Data["certificate"] == nil {
			return fmt.Errorf("%s: no certificate in the response", path)
		}
		return nil
	}
}

func (t *benchTarget) opC(csrs []string) func(int) error {
	return func(i int) error {
		_, err := t.floor(csrs[i%len(csrs)])
		return err
	}
}

// opBatch signs csrs in one request, through the same client code as opA.
func (t *benchTarget) opBatch(ctx context.Context, csrs []string) func(int) error {
	path := t.mastio + "/sign-csr"
	return func(int) error {
		s, err := t.vault.Logical().WriteWithContext(ctx, path, map[string]any{"csrs": csrs})
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("%s: empty response", path)
		}
		if certs, _ := s.Data["certificates"].([]any); len(certs) != len(csrs) {
			return fmt.Errorf("%s: %d results for %d CSRs", path, len(certs), len(csrs))
		}
		if failed := fmt.Sprint(s.Data["failed"]); failed != "0" {
			return fmt.Errorf("%s: %s CSRs of the batch failed", path, failed)
		}
		return nil
	}
}

// opOCSP asks the mount's OCSP responder about a certificate it signed
// (GET, no token, as a relying party asks), with as many revoked serials
// stored beside it as revoked says: the same certificate each time, or,
// with distinct, a new serial each time (no cached answer). Every answer
// must be a 200 application/ocsp-response; the first is parsed and checked
// in full.
func (t *benchTarget) opOCSP(ctx context.Context, csr string, revoked int, distinct bool) (func(int) error, error) {
	c := client.New(t.vault, t.mastio)
	signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{})
	if err != nil {
		return nil, err
	}
	for i := 0; i < revoked; i++ {
		if _, err := t.vault.Logical().WriteWithContext(ctx, t.mastio+"/revoke", map[string]any{
			"serial_number": fmt.Sprintf("%x", 1+i), "issuer": "org-ca", "not_after": signed.Certificate.NotAfter.Format(time.RFC3339),
		}); err != nil {
			return nil, err
		}
	}
	der, err := ocsp.CreateRequest(signed.Certificate, signed.IssuingCA, nil)
	if err != nil {
		return nil, err
	}
	target := strings.TrimSuffix(t.vault.Address(), "/") + "/v1/" + t.mastio + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
	httpc := t.vault.CloneConfig().HttpClient
	get := func(target string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" || len(body) == 0 {
			return nil, fmt.Errorf("ocsp: status %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return body, nil
	}
	body, err := get(target)
	if err != nil {
		return nil, err
	}
	if a, err := ocsp.ParseResponseForCert(body, signed.Certificate, signed.IssuingCA); err != nil || a.Status != ocsp.Good {
		return nil, fmt.Errorf("ocsp: the first answer does not check out: %v", err)
	}
	if !distinct {
		return func(int) error { _, err := get(target); return err }, nil
	}
	// Every request about another serial of the same issuer: none is
	// answered from the responder's cache.
	var n atomic.Int64
	return func(int) error {
		der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(1<<40 + n.Add(1))}, signed.IssuingCA, nil)
		if err != nil {
			return err
		}
		_, err = get(strings.TrimSuffix(t.vault.Address(), "/") + "/v1/" + t.mastio + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der)))
		return err
	}, nil
}

// hsmPair is a mount whose intermediate's key is in a PKCS#11 token and
// a twin of the same plugin build, made by the bench, whose intermediate's
// key is in Vault: the same CAs (EC P-256 Org CA and intermediate, org_id
// acme), so that only where the signing key is differs.
type hsmPair struct {
	hsm, twin string
	plugin    string // the mounts' plugin, as the catalog names it
	module    string // the token's PKCS#11 module, for the row's name
	vault     *api.Client
}

// setupHSMPair checks that mount signs with an EC P-256 intermediate whose
// key is in its token, for the bench's CSRs, and makes its twin.
func setupHSMPair(ctx context.Context, vault *api.Client, mount string) (*hsmPair, error) {
	mounts, err := vault.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return nil, err
	}
	m := mounts[mount+"/"]
	if m == nil {
		return nil, fmt.Errorf("--hsm-mount: no mount %s/", mount)
	}
	p := &hsmPair{hsm: mount, plugin: m.Type, vault: vault}
	health, err := vault.Logical().ReadWithContext(ctx, mount+"/health")
	if err != nil {
		return nil, fmt.Errorf("--hsm-mount: %s/health: %w", mount, err)
	}
	if health == nil || health.Data["intermediate-ca_key_backend"] != "pkcs11" || health.Data["pkcs11_status"] != "ok" {
		var got any
		if health != nil {
			got = fmt.Sprintf("intermediate-ca_key_backend %v, pkcs11_status %v, pkcs11_error %v",
				health.Data["intermediate-ca_key_backend"], health.Data["pkcs11_status"], health.Data["pkcs11_error"])
		}
		return nil, fmt.Errorf("--hsm-mount: %s/ does not sign with an intermediate whose key is in a working PKCS#11 token (%v): write config/pkcs11, then intermediate/generate key_backend=pkcs11", mount, got)
	}
	c := client.New(vault, mount)
	cfg, err := c.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("--hsm-mount: %w", err)
	}
	if cfg.OrgID != "acme" || cfg.TrustDomain != "cullis.local" {
		return nil, fmt.Errorf("--hsm-mount: %s/ is for org %q in %q; the bench's CSRs are for acme in cullis.local", mount, cfg.OrgID, cfg.TrustDomain)
	}
	inter, err := c.Intermediate(ctx)
	if err != nil {
		return nil, fmt.Errorf("--hsm-mount: %w", err)
	}
	if k, ok := inter.Certificate.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("--hsm-mount: %s/'s intermediate has a %s key; the bench compares EC P-256 keys", mount, keyDescription(inter.Certificate))
	}
	if s, err := vault.Logical().ReadWithContext(ctx, mount+"/config/pkcs11"); err == nil && s != nil {
		if mp, _ := s.Data["module_path"].(string); mp != "" {
			p.module = path.Base(mp)
		}
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	p.twin = "bench-vaultkey-" + hex.EncodeToString(suffix)
	if err := vault.Sys().MountWithContext(ctx, p.twin, &api.MountInput{Type: p.plugin}); err != nil {
		return nil, fmt.Errorf("enabling %s: %w", p.plugin, err)
	}
	tc := client.New(vault, p.twin)
	if _, err := tc.Generate(ctx, client.GenerateRequest{OrgID: "acme", KeyType: "ec", KeyBits: 256}); err != nil {
		return p, err
	}
	if _, err := vault.Logical().WriteWithContext(ctx, p.twin+"/intermediate/generate", map[string]any{
		"key_type": "ec", "key_bits": 256, "key_backend": "vault",
	}); err != nil {
		return p, fmt.Errorf("%s/intermediate/generate: %w", p.twin, err)
	}
	return p, nil
}

func (p *hsmPair) cleanup() {
	if p.twin != "" {
		_ = p.vault.Sys().Unmount(p.twin)
	}
}

// interleave runs each scenario for d in total, in three alternating rounds.
func interleave(ctx context.Context, workers int, d time.Duration, ops ...func(int) error) []*benchStats {
	out := make([]*benchStats, len(ops))
	for i := range out {
		out[i] = &benchStats{certsPerOp: 1}
	}
	for round := 0; round < 3; round++ {
		for i, op := range ops {
			out[i].add(drive(ctx, workers, d/3, op))
		}
	}
	return out
}

func bench(ctx context.Context, vault *api.Client, o benchOptions, log io.Writer) (string, error) {
	csrs, err := benchCSRs(256)
	if err != nil {
		return "", err
	}
	version := "unknown"
	if h, err := vault.Sys().HealthWithContext(ctx); err == nil {
		version = h.Version
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\n", benchStart)
	fmt.Fprintf(&sb, "Measured %s with `mastio-ca bench` against Vault %s on %d cores (GOMAXPROCS %d), load generator on the same machine; %s per scenario per concurrency, in 3 interleaved rounds; P-256 agent CSRs.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), version, runtime.NumCPU(), runtime.GOMAXPROCS(0), o.duration)
	fmt.Fprintln(&sb, "| CA | concurrency | scenario | certs/s | p50 | p95 | p99 | errors |")
	fmt.Fprintln(&sb, "|---|---|---|---|---|---|---|---|")
	row := func(ca string, c int, name string, st *benchStats) {
		fmt.Fprintf(&sb, "| %s | %d | %s | %.0f | %s | %s | %s | %d |\n", ca, c, name, st.perSecond(),
			fmtDur(st.percentile(0.50)), fmtDur(st.percentile(0.95)), fmtDur(st.percentile(0.99)), st.errors)
	}
	var ratios []string

	ec, err := setupTarget(ctx, vault, o.plugin, "EC P-256", "ec", 256)
	if ec != nil {
		defer ec.cleanup()
	}
	if err != nil {
		return "", err
	}
	for _, c := range o.concurrency {
		fmt.Fprintf(log, "bench: EC P-256 at concurrency %d...\n", c)
		st := interleave(ctx, c, o.duration, ec.opA(ctx, csrs), ec.opB(ctx, csrs), ec.opC(csrs))
		row("EC P-256", c, "A mastio-ca sign-csr", st[0])
		row("EC P-256", c, "B builtin PKI sign", st[1])
		row("EC P-256", c, "C in-process floor", st[2])
		ratios = append(ratios, fmt.Sprintf("concurrency %d: A/B = %.2f, A/C = %.2f, p99 A %s vs B %s",
			c, st[0].perSecond()/st[1].perSecond(), st[0].perSecond()/st[2].perSecond(), fmtDur(st[0].percentile(0.99)), fmtDur(st[1].percentile(0.99))))
		if c == 8 {
			fmt.Fprintf(log, "bench: OCSP beside sign-csr at concurrency 8...\n")
			same, err := ec.opOCSP(ctx, csrs[0], 1000, false)
			if err != nil {
				return "", err
			}
			distinct, err := ec.opOCSP(ctx, csrs[1], 0, true)
			if err != nil {
				return "", err
			}
			o := interleave(ctx, 8, o.duration, ec.opA(ctx, csrs), same, distinct)
			row("EC P-256", 8, "A mastio-ca sign-csr (beside D and E)", o[0])
			row("EC P-256", 8, "D OCSP GET, one certificate, 1,000 revoked (answers/s)", o[1])
			row("EC P-256", 8, "E OCSP GET, a new serial each time (answers/s)", o[2])
			ratios = append(ratios, fmt.Sprintf("OCSP at concurrency 8: D/A = %.2f, E/A = %.2f (goal >= 2)", o[1].perSecond()/o[0].perSecond(), o[2].perSecond()/o[0].perSecond()))
		}
		if c == 8 && o.batches {
			var single *benchStats = st[0]
			for _, size := range []int{10, 100} {
				batch := csrs[:size] // the pool holds 256
				fmt.Fprintf(log, "bench: batches of %d at concurrency 8...\n", size)
				b := interleave(ctx, 8, o.duration, ec.opBatch(ctx, batch))[0]
				b.certsPerOp = size
				row("EC P-256", 8, fmt.Sprintf("A sign-csr, batches of %d (latency per batch)", size), b)
				ratios = append(ratios, fmt.Sprintf("batch of %d at concurrency 8: %.2f x A's per-certificate throughput", size, b.perSecond()/single.perSecond()))
			}
		}
	}
	if o.hsmMount != "" {
		fmt.Fprintf(log, "bench: intermediate key in the PKCS#11 token of %s/ at concurrency 8...\n", o.hsmMount)
		p, err := setupHSMPair(ctx, vault, o.hsmMount)
		if p != nil {
			defer p.cleanup()
		}
		if err != nil {
			return "", err
		}
		st := interleave(ctx, 8, o.duration,
			signOp(ctx, vault, p.twin+"/sign-csr", csrs), signOp(ctx, vault, p.hsm+"/sign-csr", csrs))
		token := "the PKCS#11 token"
		if p.module != "" {
			token += " (" + p.module + ")"
		}
		row("EC P-256", 8, "A sign-csr, intermediate key in Vault ("+p.plugin+", beside H)", st[0])
		row("EC P-256", 8, "H sign-csr, intermediate key in "+token, st[1])
		ratios = append(ratios, fmt.Sprintf("intermediate key in %s at concurrency 8: H/A = %.2f, p99 H %s vs A %s (same plugin build and CAs, key in Vault for A; goal >= 0.50)",
			token, st[1].perSecond()/st[0].perSecond(), fmtDur(st[1].percentile(0.99)), fmtDur(st[0].percentile(0.99))))
	}
	rsaSizes := []int{2048, 4096}
	if !o.rsa {
		rsaSizes = nil
	}
	for _, rsa := range rsaSizes {
		label := fmt.Sprintf("RSA-%d", rsa)
		fmt.Fprintf(log, "bench: %s at concurrency 8...\n", label)
		t, err := setupTarget(ctx, vault, o.plugin, label, "rsa", rsa)
		if t != nil {
			defer t.cleanup()
		}
		if err != nil {
			return "", err
		}
		st := interleave(ctx, 8, o.duration, t.opA(ctx, csrs), t.opB(ctx, csrs), t.opC(csrs))
		row(label, 8, "A mastio-ca sign-csr", st[0])
		row(label, 8, "B builtin PKI sign", st[1])
		row(label, 8, "C in-process floor", st[2])
		ratios = append(ratios, fmt.Sprintf("%s at concurrency 8: A/B = %.2f, A/C = %.2f", label, st[0].perSecond()/st[1].perSecond(), st[0].perSecond()/st[2].perSecond()))
	}
	fmt.Fprintln(&sb, "\nRatios in this run:")
	fmt.Fprintln(&sb)
	for _, r := range ratios {
		fmt.Fprintf(&sb, "- %s\n", r)
	}
	fmt.Fprintf(&sb, "%s\n", benchEnd)
	return sb.String(), nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

// replaceSection writes table between the bench markers of file, or
// appends it when the markers are not there.
func replaceSection(file, table string) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, benchStart), strings.Index(s, benchEnd)
	if i >= 0 && j > i {
		s = s[:i] + strings.TrimRight(table, "\n") + s[j+len(benchEnd):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + table
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
