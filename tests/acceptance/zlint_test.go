package acceptance

import (
	"encoding/pem"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// lintSourcesIgnored are zlint sources that judge publicly trusted web,
// code-signing, S/MIME or EU qualified certificates, or OCSP and CT: rules
// for certificates this private SPIFFE CA does not issue. Every other
// source (RFC 3279, 5280, 5480, 5891, 8813 and the community lints) runs.
var lintSourcesIgnored = lint.SourceList{
	lint.CABFBaselineRequirements, lint.CABFCSBaselineRequirements, lint.CABFSMIMEBaselineRequirements,
	lint.CABFEVGuidelines, lint.MozillaRootStorePolicy, lint.AppleRootStorePolicy, lint.ChromeRootStorePolicy,
	lint.EtsiEsi, lint.RFC6960, lint.RFC6962,
}

var lintRegistry = func() lint.Registry {
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{ExcludeSources: lintSourcesIgnored})
	if err != nil {
		panic(err)
	}
	return r
}()

// lintProblems returns zlint's error and fatal results for one PEM
// certificate.
func lintProblems(t *testing.T, p string) (string, []string) {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		t.Fatalf("zlint: not PEM: %q", p)
	}
	c, err := zx509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("zlint could not parse the certificate: %v", err)
	}
	var bad []string
	for name, r := range zlint.LintCertificateEx(c, lintRegistry).Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			bad = append(bad, fmt.Sprintf("%s (%s: %s)", name, r.Status, r.Details))
		}
	}
	sort.Strings(bad)
	return c.Subject.String(), bad
}

// assertLints runs zlint on every PEM certificate given and fails on any
// error or fatal result.
func assertLints(t *testing.T, pems ...string) {
	t.Helper()
	for _, p := range pems {
		if subject, bad := lintProblems(t, p); len(bad) > 0 {
			t.Errorf("zlint on %s: %s", subject, strings.Join(bad, "; "))
		}
	}
}

// TestZlint_CatchesABadCertificate keeps assertLints honest: a CA
// certificate without a subject key identifier breaks RFC 5280.
func TestZlint_CatchesABadCertificate(t *testing.T) {
	dir := t.TempDir()
	mustOpenSSL(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem")
	mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", "k.pem", "-days", "30", "-out", "c.pem", "-subj", "/CN=bad CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-addext", "subjectKeyIdentifier=none")
	_, bad := lintProblems(t, readFile(t, filepath.Join(dir, "c.pem")))
	if !strings.Contains(strings.Join(bad, " "), "e_ext_subject_key_identifier_missing_ca") {
		t.Fatalf("zlint did not flag a CA without SKI: %v", bad)
	}
}
