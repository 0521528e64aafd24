package acceptance

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestACL_SPIREAndCertManagerPolicies: a token with policies/mastio-spire.hcl
// has the Org CA sign a SPIRE server's CA, sending SPIRE's fields only; one
// with policies/mastio-cert-manager.hcl signs under its role only. Every
// other path of the mount is a 403 for both, and so is root/sign-intermediate
// with a field SPIRE does not send.
func TestACL_SPIREAndCertManagerPolicies(t *testing.T) {
	ctx := t.Context()
	mount, c, _, _ := newCA(t, true)
	dir := t.TempDir()
	csr := readFile(t, agentCSR(t, dir, "acl-spire"))
	spireCSR := mustOpenSSLCSR(t, dir, "spire", "/O=SPIFFE/C=US", "URI:spiffe://cullis.local")

	spire := tokenWith(t, "mastio-spire.hcl", mount)
	s, err := spire.Logical().WriteWithContext(ctx, mount+"/root/sign-intermediate", map[string]any{
		"csr": spireCSR, "common_name": "", "organization": "SPIFFE", "country": "US", "uri_sans": "spiffe://cullis.local", "ttl": "86400",
	})
	if err != nil || s == nil || s.Data["certificate"] == nil {
		t.Fatalf("spire: root/sign-intermediate: %v, %v", s, err)
	}
	for _, extra := range []map[string]any{{"max_path_length": 1}, {"key_usage": "DigitalSignature"}, {"alt_names": "x.example"}} {
		extra["csr"] = spireCSR
		_, err := spire.Logical().WriteWithContext(ctx, mount+"/root/sign-intermediate", extra)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("spire: root/sign-intermediate with %v: %v, want 403", extra, err)
		}
	}
	leafCalls := []deniedCall{
		{"write", "sign-csr", map[string]any{"csr": csr}},
		{"write", "sign-public-key", map[string]any{"public_key": "x", "name": "a"}},
		{"write", "intermediate/rotate", nil},
		{"read", "health", nil},
	}
	assertDenied(t, spire, mount, "spire", append(append([]deniedCall{}, adminOnlyCalls...), append(leafCalls,
		deniedCall{"write", "sign/k8s-workload", map[string]any{"csr": csr}})...))

	if err := c.WriteRole(ctx, "k8s-workload", roleForSPIFFEWorkloads()); err != nil {
		t.Fatal(err)
	}
	cm := tokenWith(t, "mastio-cert-manager.hcl", mount)
	if _, err := cm.Logical().WriteWithContext(ctx, mount+"/sign/k8s-workload", map[string]any{"csr": csr}); err != nil {
		t.Fatalf("cert-manager: sign/k8s-workload: %v", err)
	}
	assertDenied(t, cm, mount, "cert-manager", append(append([]deniedCall{}, adminOnlyCalls...), append(leafCalls,
		deniedCall{"write", "sign/agent", map[string]any{"csr": csr}},
		deniedCall{"write", "root/sign-intermediate", map[string]any{"csr": spireCSR}})...))
}

// mustOpenSSLCSR makes a P-256 CSR with subject subj and subjectAltName san
// in dir and returns its PEM.
func mustOpenSSLCSR(t *testing.T, dir, name, subj, san string) string {
	t.Helper()
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".csr", "-subj", subj, "-addext", "subjectAltName="+san)
	return readFile(t, filepath.Join(dir, name+".csr"))
}

// roleForSPIFFEWorkloads is a role for cert-manager's workloads: one SPIFFE
// ID in the org, empty subject, and the SPIFFE-recommended EKU.
func roleForSPIFFEWorkloads() client.Role {
	return client.Role{
		URISANPattern:       "spiffe://{{trust_domain}}/{{org_id}}/*",
		SubjectCommonName:   client.String(""),
		SubjectOrganization: client.String(""),
		ExtKeyUsage:         []string{"ServerAuth", "ClientAuth"},
		TTL:                 24 * time.Hour,
		MaxTTL:              2160 * time.Hour,
	}
}

// TestACL_RevokerPolicy: with policies/mastio-revoker.hcl a token revokes a
// certificate, and every other path of the mount is a 403, signing and
// tidy included; the CRL and OCSP need no token.
func TestACL_RevokerPolicy(t *testing.T) {
	ctx := t.Context()
	mount, c, _, _ := newCA(t, true)
	dir := t.TempDir()
	csr := readFile(t, agentCSR(t, dir, "acl-revoked"))
	signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	revoker := tokenWith(t, "mastio-revoker.hcl", mount)
	s, err := revoker.Logical().WriteWithContext(ctx, mount+"/revoke", map[string]any{"certificate": signed.CertificatePEM, "reason": "keyCompromise"})
	if err != nil || s == nil || s.Data["already_revoked"] != false {
		t.Fatalf("revoker: revoke: %v, %v", s, err)
	}
	if code, body := unauthenticatedGet(t, mount+"/crl/pem"); code != 200 || !strings.Contains(body, "BEGIN X509 CRL") {
		t.Fatalf("crl/pem without a token: %d", code)
	}
	var denied []deniedCall
	for _, d := range adminOnlyCalls {
		if d.path != "revoke" {
			denied = append(denied, d)
		}
	}
	assertDenied(t, revoker, mount, "revoker", append(denied,
		deniedCall{"write", "sign-csr", map[string]any{"csr": csr}},
		deniedCall{"write", "sign/agent", map[string]any{"csr": csr}},
		deniedCall{"write", "intermediate/rotate", nil},
		deniedCall{"write", "root/sign-intermediate", map[string]any{"csr": csr}},
		deniedCall{"read", "health", nil},
	))
}
