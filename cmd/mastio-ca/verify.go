package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// Exit codes of verify, as monitoring checks use them (also in its usage
// text and docs/operator-guide.md).
const (
	verifyOK       = 0
	verifyWarning  = 1 // a CA expires within --warn-days, or a CRL is in the last quarter of its validity
	verifyCritical = 2 // a check failed (a CRL past its nextUpdate or not signed by its CA too, the PKCS#11 token unavailable), or the mount has no Org CA
	verifyUnknown  = 3 // could not check: flags, Vault unreachable, token refused
)

const verifyUsage = `Usage: mastio-ca verify [flags]

Checks a mastio-ca mount as a relying party would, and that the plugin
holds the keys of the certificates it publishes:

  - the Org CA certificate: a CA, valid now, and the days it has left
  - where each CA's key is, from health: in Vault, or in the mount's
    PKCS#11 token (key_backend=pkcs11); with config/pkcs11 written, that
    the plugin can log in to the token and find each CA key there
  - the Mastio Intermediate CA, when there is one: a CA issued by the Org
    CA, inside the Org CA's validity, and the days it has left; the
    rotated-out one, while its grace lasts, still issued by the Org CA and
    valid
  - proof of possession of each CA's key: the plugin signs a throw-away CSR
    through a temporary role pinned to that CA (a one-minute certificate,
    role deleted afterwards) and the certificate must verify under the
    published CA certificate. On an issuing mount (docs/spiffe.md) the
    Org CA is held as a certificate only (source anchor) and its key is
    proved by verify on the root mount
  - the chain: that certificate verifies to the Org CA as the root,
    through the intermediate, as agents' peers verify it
  - the CRLs (no token needed): that of the CA that signs leaves now
    (crl), the Org CA's (issuer/org-ca/crl) on a mount that holds its key,
    and a rotated-out intermediate's during its grace. Each must verify
    under its CA's certificate, and its nextUpdate must be more than a
    quarter of its validity away: the plugin rebuilds each CRL at half its
    validity (config crl_expiry), on the active node

It reads no key and changes nothing but the temporary role. The token needs
the mastio-ca-admin policy (health, config, roles, sign-csr). With
--prove=false it makes no test signing and checks the published
certificates only; the mastio-ca-monitor policy (read health) is then
enough, for monitoring. Vault is reached through VAULT_ADDR, VAULT_TOKEN
and VAULT_CACERT.

Exit codes (as monitoring checks use them):
  0  every check passed
  1  warning: a CA expires within --warn-days, or a CRL has less than a
     quarter of its validity left before its nextUpdate
  2  critical: a check failed (a CRL past its nextUpdate, not signed by
     its CA, or not served among them; the PKCS#11 token unavailable), or
     the mount has no Org CA
  3  could not check: bad flags, Vault unreachable, or the token refused

Flags:
`

type verifyOptions struct {
	mount    string
	warnDays int
	prove    bool
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommand("verify", verifyUsage, "", stderr)
	var o verifyOptions
	fs.StringVar(&o.mount, "mount", "mastio-ca", "the plugin's mount path")
	fs.IntVar(&o.warnDays, "warn-days", 30, "warn when a CA has fewer days left than this (Mastio renews its intermediate at 30)")
	fs.BoolVar(&o.prove, "prove", true, "prove possession of each CA's key by a test signing (admin policy); false checks the published certificates only (monitor policy)")
	if code, stop := parse(fs, args, verifyUnknown); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mastio-ca verify: unexpected argument %q\n", fs.Arg(0))
		return verifyUnknown
	}
	if o.warnDays < 0 {
		fmt.Fprintf(stderr, "mastio-ca verify: --warn-days must not be negative\n")
		return verifyUnknown
	}
	o.mount = strings.Trim(o.mount, "/")
	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		fmt.Fprintf(stderr, "mastio-ca verify: %v\n", err)
		return verifyUnknown
	}
	if vault.Token() == "" {
		fmt.Fprintln(stderr, "mastio-ca verify: set VAULT_ADDR and VAULT_TOKEN")
		return verifyUnknown
	}
	v := &verification{out: stdout, stderr: stderr, warnDays: o.warnDays, now: time.Now()}
	if err := v.run(ctx, vault, o.mount, o.prove); err != nil {
		fmt.Fprintf(stderr, "mastio-ca verify: could not check %s/: %v\n", o.mount, err)
		if v.failures == 0 {
			return verifyUnknown
		}
		// What was checked already failed: that is the news.
	}
	return v.exitCode()
}

// verification prints one line per check and counts the outcomes.
type verification struct {
	out, stderr        io.Writer
	warnDays           int
	now                time.Time
	warnings, failures int
	// keys is where each CA's key is ("org-ca", "intermediate-ca"), as
	// health reports it; empty for a plugin that predates key backends.
	keys map[string]caKey
}

// caKey is where one CA's key is: health's <ca>_key_backend ("vault" or
// "pkcs11") and, in a token, <ca>_pkcs11_key (its CKA_ID and label).
type caKey struct {
	backend, ref string
}

// Key backends as health names them.
const (
	keyBackendVault  = "vault"
	keyBackendPKCS11 = "pkcs11"
)

// readKeys takes each CA's key backend from health.
func (v *verification) readKeys(health map[string]any) {
	v.keys = map[string]caKey{}
	for _, ca := range []string{"org-ca", "intermediate-ca"} {
		backend, _ := health[ca+"_key_backend"].(string)
		if backend == "" {
			continue
		}
		ref, _ := health[ca+"_pkcs11_key"].(string)
		v.keys[ca] = caKey{backend: backend, ref: ref}
	}
}

// reportKey says what protects the key of CA ca (label as the other
// checks name it), when health said where it is.
func (v *verification) reportKey(label, ca string) {
	k, ok := v.keys[ca]
	if !ok {
		return
	}
	switch k.backend {
	case keyBackendPKCS11:
		ref := ""
		if k.ref != "" {
			ref = ": " + k.ref
		}
		v.ok("%s: key in the PKCS#11 token, as health reports; Vault holds only its reference%s (its attributes are the token's to show: docs/hsm.md)", label, ref)
	case keyBackendVault:
		v.ok("%s: key in Vault (in the CA's storage entry, under Vault's barrier encryption; README \"Key custody\")", label)
	default:
		v.ok("%s: key backend %q", label, k.backend)
	}
}

// inToken lists the CAs whose key is in the PKCS#11 token.
func (v *verification) inToken() []string {
	var out []string
	for _, ca := range []struct{ name, label string }{{"org-ca", "Org CA"}, {"intermediate-ca", "Mastio Intermediate CA"}} {
		if v.keys[ca.name].backend == keyBackendPKCS11 {
			out = append(out, ca.label)
		}
	}
	return out
}

// checkPKCS11 judges health's pkcs11_status and pkcs11_error: there when
// the mount has config/pkcs11, whose token the plugin then logged in to and
// looked each CA key up in.
func (v *verification) checkPKCS11(health map[string]any, mount string) {
	status, _ := health["pkcs11_status"].(string)
	problem, _ := health["pkcs11_error"].(string)
	users := v.inToken()
	impact := "no CA's key is in it, but key_backend=pkcs11 cannot make one there"
	if len(users) > 0 {
		impact = "the " + strings.Join(users, " and the ") + " cannot sign until it is back (sign-csr answers 503)"
	}
	switch {
	case problem != "" || status != "" && status != "ok":
		if problem == "" {
			problem = "pkcs11_status " + status + ", no pkcs11_error given"
		}
		advice := fmt.Sprintf("bring the token back or fix its module: the plugin tries again on its own (vault read %s/config/pkcs11 shows the settings)", mount)
		if strings.Contains(problem, "PIN") {
			advice = fmt.Sprintf("write the right PIN: vault write %s/config/pkcs11 pin=@<file> (the plugin does not try a refused PIN again)", mount)
		}
		v.fail("PKCS#11 token: unavailable: %s; %s; %s", problem, impact, advice)
	case status == "ok":
		v.ok("PKCS#11 token: the plugin logs in and finds every CA key in it (config/pkcs11)")
	case len(users) > 0:
		v.fail("PKCS#11 token: the %s has its key in a PKCS#11 token, but health reports no token status (pkcs11_status): is %s/config/pkcs11 written?", strings.Join(users, " and the "), mount)
	}
}

func (v *verification) ok(format string, args ...any) {
	fmt.Fprintf(v.out, "OK    "+format+"\n", args...)
}

func (v *verification) warn(format string, args ...any) {
	v.warnings++
	fmt.Fprintf(v.out, "WARN  "+format+"\n", args...)
}

func (v *verification) fail(format string, args ...any) {
	v.failures++
	fmt.Fprintf(v.out, "FAIL  "+format+"\n", args...)
}

func (v *verification) exitCode() int {
	switch {
	case v.failures > 0:
		fmt.Fprintf(v.out, "Result: CRITICAL (%s failed, %s)\n", plural(v.failures, "check"), plural(v.warnings, "warning"))
		return verifyCritical
	case v.warnings > 0:
		fmt.Fprintf(v.out, "Result: WARNING (%s)\n", plural(v.warnings, "warning"))
		return verifyWarning
	default:
		fmt.Fprintln(v.out, "Result: OK")
		return verifyOK
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// run makes the checks; an error means a check could not be made at all
// (Vault unreachable, the token refused), not that one failed.
func (v *verification) run(ctx context.Context, vault *api.Client, mount string, prove bool) error {
	health, err := vault.Logical().ReadWithContext(ctx, mount+"/health")
	if err != nil {
		return err
	}
	if health == nil {
		return fmt.Errorf("no %s/health: is the mastio-ca plugin mounted there?", mount)
	}
	fmt.Fprintf(v.out, "Mount %s/: plugin %v (commit %v)\n", mount, health.Data["version"], health.Data["commit"])
	v.readKeys(health.Data)
	v.checkPKCS11(health.Data, mount)

	c := client.New(vault, mount)
	org, err := c.CA(ctx)
	if errors.Is(err, client.ErrNotFound) {
		v.fail("Org CA: none; nothing can be signed (vault write %s/generate org_id=..., or mastio-ca migrate)", mount)
		return nil
	}
	if err != nil {
		return err
	}
	if org.Source == "anchor" {
		delete(v.keys, "org-ca") // no key here: said below
	}
	v.checkOrgCA(org.Certificate)

	inter, err := c.Intermediate(ctx)
	switch {
	case errors.Is(err, client.ErrNotFound):
		inter = nil
		v.ok("Mastio Intermediate CA: none; the Org CA signs agent certificates itself")
	case err != nil:
		return err
	default:
		v.checkIntermediate(inter, org.Certificate, mount)
	}
	if err := v.checkCRLs(ctx, c, org, inter); err != nil {
		return err
	}

	if !prove {
		fmt.Fprintln(v.out, "SKIP  proof of possession and test chain (--prove=false)")
		return nil
	}
	// Proof of possession of each key; the certificate the active CA signs
	// (the intermediate's when there is one) also proves the chain.
	var activeLeaf *x509.Certificate
	for _, ca := range []struct {
		label, issuer string
		cert          *x509.Certificate
		active        bool
	}{
		{"Org CA", "org-ca", org.Certificate, inter == nil},
		{"Mastio Intermediate CA", "intermediate-ca", certOf(inter), inter != nil},
	} {
		if ca.cert == nil {
			continue
		}
		if ca.issuer == "org-ca" && org.Source == "anchor" {
			// An issuing mount: the Org CA's key is on the root mount,
			// where `mastio-ca verify` proves it.
			v.ok("Org CA: this mount holds its certificate only (source anchor); its key is on the root mount: run verify there to prove it")
			if ca.active {
				v.fail("Org CA: this mount has no intermediate and cannot sign: activate one (intermediate/generate-csr, then intermediate/set-signed)")
			}
			continue
		}
		signed, err := proveKey(ctx, c, ca.issuer, "mastio-ca-verify", ca.cert, v.stderr)
		var mismatch *mismatchError
		var answered *client.Error
		switch {
		case v.keys[ca.issuer].backend == keyBackendPKCS11 && errors.As(err, &answered) &&
			answered.StatusCode == http.StatusServiceUnavailable && !errors.Is(err, client.ErrSealed):
			// The plugin answered that the token cannot sign now.
			v.fail("%s: proof of possession: its key is in the PKCS#11 token, which cannot sign now: %v", ca.label, err)
			continue
		case errors.As(err, &mismatch), errors.Is(err, client.ErrPolicy), errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrCAState):
			// The proof ran: the plugin signed with another key, or
			// refused to sign (a policy, a missing role or CA, or a CA
			// that cannot sign now, such as an expired one).
			v.fail("%s: proof of possession: %v", ca.label, err)
			continue
		case err != nil:
			return err // Vault unreachable, sealed, the token refused: not checked
		}
		v.ok("%s: proof of possession: the plugin signed serial %s, which verifies under the published certificate", ca.label, signed.SerialNumber)
		if ca.active {
			activeLeaf = signed.Certificate
		}
	}
	if activeLeaf != nil {
		v.checkChain(activeLeaf, org.Certificate, certOf(inter))
	}
	return nil
}

func certOf(i *client.Intermediate) *x509.Certificate {
	if i == nil {
		return nil
	}
	return i.Certificate
}

func (v *verification) checkOrgCA(cert *x509.Certificate) {
	const label = "Org CA"
	if !v.checkCA(label, cert) {
		return
	}
	origin := "self-signed"
	if cert.CheckSignatureFrom(cert) != nil {
		origin = "issued by " + cert.Issuer.String() + " (not self-signed: relying parties need that issuer too)"
	}
	v.ok("%s: %s, %s, %s, sha256 %s", label, cert.Subject, keyDescription(cert), origin, sha256Hex(cert.Raw))
	v.reportKey(label, "org-ca")
	v.checkExpiry(label, cert, "plan its replacement: every certificate under it stops validating then")
}

func (v *verification) checkIntermediate(inter *client.Intermediate, org *x509.Certificate, mount string) {
	const label = "Mastio Intermediate CA"
	cert := inter.Certificate
	if !v.checkCA(label, cert) {
		return
	}
	if err := cert.CheckSignatureFrom(org); err != nil {
		v.fail("%s: not issued by the Org CA: %v", label, err)
		return
	}
	pathLen := "path length 0"
	if !(cert.MaxPathLen == 0 && cert.MaxPathLenZero) {
		pathLen = "path length not limited to 0"
		if cert.MaxPathLen > 0 {
			pathLen = fmt.Sprintf("path length %d", cert.MaxPathLen)
		}
	}
	v.ok("%s: %s, %s, issued by the Org CA, %s, sha256 %s", label, cert.Subject, keyDescription(cert), pathLen, sha256Hex(cert.Raw))
	v.reportKey(label, "intermediate-ca")
	if cert.NotAfter.After(org.NotAfter) {
		v.warn("%s: valid until %s, after the Org CA (%s): certificates under it stop validating with the Org CA",
			label, cert.NotAfter.UTC().Format(time.RFC3339), org.NotAfter.UTC().Format(time.RFC3339))
	}
	v.checkExpiry(label, cert, fmt.Sprintf("rotate it: vault write -f %s/intermediate/rotate", mount))
	if prev := inter.Previous; prev != nil {
		const prevLabel = "Rotated-out intermediate"
		switch err := prev.CheckSignatureFrom(org); {
		case err != nil:
			v.fail("%s (sha256 %s): not issued by the Org CA: %v", prevLabel, sha256Hex(prev.Raw), err)
		case !v.now.Before(prev.NotAfter):
			v.warn("%s (sha256 %s): expired on %s, though still published until %s", prevLabel, sha256Hex(prev.Raw),
				prev.NotAfter.UTC().Format(time.RFC3339), inter.PreviousGraceUntil.UTC().Format(time.RFC3339))
		default:
			v.ok("%s (sha256 %s): issued by the Org CA, still accepted until %s", prevLabel, sha256Hex(prev.Raw),
				inter.PreviousGraceUntil.UTC().Format(time.RFC3339))
		}
	}
}

// checkCA fails a certificate that cannot act as a CA now; it reports
// whether the other checks are worth making.
func (v *verification) checkCA(label string, cert *x509.Certificate) bool {
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		v.fail("%s: the certificate is not a CA (basic constraints)", label)
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		v.fail("%s: the certificate's key usage does not allow signing certificates", label)
	case v.now.Before(cert.NotBefore):
		v.fail("%s: not valid before %s", label, cert.NotBefore.UTC().Format(time.RFC3339))
	case !v.now.Before(cert.NotAfter):
		v.fail("%s: expired on %s", label, cert.NotAfter.UTC().Format(time.RFC3339))
	default:
		return true
	}
	return false
}

func (v *verification) checkExpiry(label string, cert *x509.Certificate, advice string) {
	left := cert.NotAfter.Sub(v.now)
	days := int(left.Hours() / 24)
	until := cert.NotAfter.UTC().Format(time.RFC3339)
	if left < time.Duration(v.warnDays)*24*time.Hour {
		v.warn("%s: expires in %d days (%s), within --warn-days %d: %s", label, days, until, v.warnDays, advice)
		return
	}
	v.ok("%s: valid until %s (%d days left)", label, until, days)
}

// checkChain verifies leaf to the Org CA as the only root, through the
// intermediate when there is one. It verifies at the middle of the leaf's
// life, Vault's clock: the test certificate lives a minute, and this
// machine's clock may be off by that much.
func (v *verification) checkChain(leaf, org, inter *x509.Certificate) {
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(org)
	path := "leaf → Org CA"
	if inter != nil {
		intermediates.AddCert(inter)
		path = "leaf → Mastio Intermediate CA → Org CA"
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates, CurrentTime: leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		v.fail("Chain: the test certificate does not verify to the Org CA: %v", err)
		return
	}
	if inter != nil && (len(chains[0]) != 3 || !chains[0][1].Equal(inter)) {
		v.fail("Chain: the test certificate verifies to the Org CA without the intermediate")
		return
	}
	v.ok("Chain: the test certificate verifies as %s", path)
}

// crlWarnShare is the share of a CRL's validity (nextUpdate - thisUpdate)
// below which verify warns: the plugin rebuilds at half, so a CRL this
// close to its nextUpdate means the rebuilds stopped.
const crlWarnShare = 0.25

// crlSource is a CA whose CRL verify reads.
type crlSource struct {
	label string // as the other checks name the CA
	ref   string // client.CRL's issuerRef
	path  string // the path, for the operator
	ca    *x509.Certificate
	// optional: a CA that may publish none (a rotated-out intermediate
	// whose key was not kept).
	optional bool
}

// crlSources are the CAs of the mount that publish a CRL: the one that
// signs leaves now; the Org CA when the mount holds its key and it is not
// that one; the rotated-out intermediate during its grace.
func (v *verification) crlSources(org *client.CA, inter *client.Intermediate) []crlSource {
	hasOrgKey := org.Source != "anchor"
	if inter == nil {
		if !hasOrgKey {
			return nil // an issuing mount with no intermediate: it signs nothing, and publishes nothing
		}
		return []crlSource{{label: "Org CA", path: "crl", ca: org.Certificate}}
	}
	out := []crlSource{{label: "Mastio Intermediate CA", path: "crl", ca: inter.Certificate}}
	if hasOrgKey {
		out = append(out, crlSource{label: "Org CA", ref: "org-ca", path: "issuer/org-ca/crl", ca: org.Certificate})
	}
	if prev := inter.Previous; prev != nil && len(prev.SubjectKeyId) > 0 && v.now.Before(inter.PreviousGraceUntil) {
		id := hex.EncodeToString(prev.SubjectKeyId)
		out = append(out, crlSource{label: "Rotated-out intermediate", ref: id, path: "issuer/" + id + "/crl", ca: prev, optional: true})
	}
	return out
}

// checkCRLs reads and judges each CRL the mount publishes. An error means
// a CRL could not be read at all (Vault unreachable or sealed, the token
// refused); a CRL the mount does not serve is a failed check.
func (v *verification) checkCRLs(ctx context.Context, c *client.Client, org *client.CA, inter *client.Intermediate) error {
	for _, s := range v.crlSources(org, inter) {
		name := fmt.Sprintf("CRL of the %s (%s)", s.label, s.path)
		list, der, err := c.CRL(ctx, s.ref, false)
		switch {
		case err == nil:
			v.judgeCRL(name, s.label, list, s.ca)
		case der != nil:
			v.fail("%s: the mount serves %d bytes that are not a CRL: %v", name, len(der), err)
		case s.optional && errors.Is(err, client.ErrNotFound):
			v.ok("%s: none published: the mount no longer holds its key (as for one rotated out before the plugin kept rotated-out keys for their CRLs)", name)
		case vaultAnswered(err):
			hint := ""
			if strings.Contains(err.Error(), "unsupported path") {
				hint = " (a plugin version without revocation publishes no CRL: upgrade it)"
			}
			v.fail("%s: not served: %v%s", name, err, hint)
		default:
			return err
		}
	}
	return nil
}

// vaultAnswered reports whether err is the mount's own refusal (not found,
// a CA state, a server error), not a failure to ask: Vault unreachable or
// sealed, the token refused.
func vaultAnswered(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode == 0 {
		return false
	}
	return errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrCAState) || e.StatusCode >= 500 && e.StatusCode != 503
}

// judgeCRL checks a complete CRL of ca: issued and signed by it, and fresh.
func (v *verification) judgeCRL(name, caLabel string, list *x509.RevocationList, ca *x509.Certificate) {
	if !bytes.Equal(list.RawIssuer, ca.RawSubject) {
		v.fail("%s: issued by %s, not by the %s (%s)", name, list.Issuer, caLabel, ca.Subject)
		return
	}
	if err := list.CheckSignatureFrom(ca); err != nil {
		v.fail("%s: does not verify under the %s certificate (sha256 %s): %v", name, caLabel, sha256Hex(ca.Raw), err)
		return
	}
	if list.NextUpdate.IsZero() {
		v.warn("%s: has no nextUpdate: relying parties cannot tell a stale copy", name)
		return
	}
	validity := list.NextUpdate.Sub(list.ThisUpdate)
	left := list.NextUpdate.Sub(v.now)
	next := list.NextUpdate.UTC().Format(time.RFC3339)
	number := "-"
	if list.Number != nil {
		number = list.Number.String()
	}
	switch {
	case left <= 0:
		v.fail("%s: its nextUpdate %s has passed (%s ago): relying parties that check CRLs refuse every certificate under the %s. The plugin rebuilds CRLs on the active node: check that it is up and the mount's log", name, next, roughDuration(-left), caLabel)
	case validity <= 0:
		v.fail("%s: thisUpdate %s is not before nextUpdate %s", name, list.ThisUpdate.UTC().Format(time.RFC3339), next)
	case float64(left) < crlWarnShare*float64(validity):
		v.warn("%s: next update %s, in %s: less than a quarter of its %s validity left, though the plugin rebuilds at half; are the active node's periodic rebuilds running?", name, next, roughDuration(left), roughDuration(validity))
	default:
		v.ok("%s: number %s, %s, signed by the %s, next update %s (in %s, %d%% of its %s validity left)",
			name, number, plural(len(list.RevokedCertificateEntries), "revoked certificate"), caLabel, next, roughDuration(left), int(100*left/validity), roughDuration(validity))
	}
}

// roughDuration prints d to the minute (to the second under a minute).
func roughDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
