package issuing

import (
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// The pathLen of every CA above counts, not only the Org CA's (issue 12,
// defect 3): a root with pathLen 0 may not have the Org CA below it, and a
// root with pathLen 1 allows the Org CA but not an intermediate under it.
func TestPathLenOfEveryCA(t *testing.T) {
	ku := x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	rootKey, orgKey, interKey := testpki.NewECKey(t, elliptic.P256()), testpki.NewECKey(t, elliptic.P256()), testpki.NewECKey(t, elliptic.P256())
	end := time.Now().Add(365 * 24 * time.Hour)
	chainUnder := func(root *x509.Certificate) (*x509.Certificate, *ImportedCA) {
		org := testpki.MakeCert(t, testpki.CACert{Key: orgKey, IsCA: true, KeyUsage: ku, Org: "acme", NotAfter: end, Parent: root, ParentKey: rootKey})
		inter := testpki.MakeCert(t, testpki.CACert{Key: interKey, IsCA: true, KeyUsage: ku, Org: "acme", NotAfter: end.Add(-time.Hour), Parent: org, ParentKey: orgKey})
		ic, err := ValidateImport(testpki.PKCS8PEM(t, interKey), testpki.CertPEM(inter), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return org, ic
	}
	rootZero := testpki.MakeCert(t, testpki.CACert{Key: rootKey, IsCA: true, KeyUsage: ku, NotAfter: end.Add(time.Hour), PathLenZero: true})
	org, _ := chainUnder(rootZero)
	if _, err := ValidateImport(testpki.PKCS8PEM(t, orgKey), testpki.CertPEM(org), testpki.CertPEM(rootZero), time.Now()); err == nil || !strings.Contains(err.Error(), "pathLen 0 but 1") {
		t.Fatalf("an Org CA under a pathLen-0 root: %v", err)
	}
	rootOne := testpki.MakeCert(t, testpki.CACert{Key: rootKey, IsCA: true, KeyUsage: ku, NotAfter: end.Add(time.Hour), PathLen: 1})
	org, ic := chainUnder(rootOne)
	if _, err := ValidateImport(testpki.PKCS8PEM(t, orgKey), testpki.CertPEM(org), testpki.CertPEM(rootOne), time.Now()); err != nil {
		t.Fatalf("an Org CA under a pathLen-1 root: %v", err)
	}
	if err := ic.CheckIntermediateOf(org, []*x509.Certificate{rootOne}); KindOf(err) != KindState || !strings.Contains(err.Error(), "pathLen 1 but 2") {
		t.Fatalf("an intermediate two below a pathLen-1 root: %v", err)
	}
	if err := ic.CheckIntermediateOf(org, nil); err != nil {
		t.Fatalf("the same intermediate under the Org CA alone: %v", err)
	}
}
