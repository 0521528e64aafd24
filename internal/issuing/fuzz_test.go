package issuing

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ (CSRs and keys made by
// openssl); run a target with e.g. `go test ./backend -fuzz FuzzParseCSR`.

func FuzzParseCSR(f *testing.F) {
	f.Add(testpki.AgentCSR(f, "seed"))
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		req, err := ParseCSR(text)
		if err != nil {
			if !IsInput(err) {
				t.Fatalf("ParseCSR returned a non-input error: %v", err)
			}
			return
		}
		block, _ := pem.Decode([]byte(strings.TrimSpace(text)))
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil || req.pub == nil || !PublicKeysEqual(req.pub, csr.PublicKey) {
			t.Fatalf("ParseCSR accepted a CSR that does not parse again, or returned another key: %v", err)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("ParseCSR accepted a CSR whose signature does not verify: %v", err)
		}
	})
}

var base64Line = regexp.MustCompile(`^[A-Za-z0-9+/=]+$`)

func FuzzParsePrivateKeyPEM(f *testing.F) {
	f.Add(testpki.PKCS8PEM(f, testpki.NewEd25519Key(f)))
	f.Add("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		key, err := ParsePrivateKeyPEM(text)
		if err != nil {
			if !IsInput(err) {
				t.Fatalf("non-input error: %v", err)
			}
			// No error may quote a line of the key's base64 body back.
			for _, line := range strings.Split(text, "\n") {
				line = strings.TrimSpace(line)
				if len(line) >= 16 && base64Line.MatchString(line) && strings.Contains(err.Error(), line) {
					t.Fatalf("error %q quotes input line %q", err, line)
				}
			}
			return
		}
		if _, _, err := KeyInfo(key.Public()); err != nil {
			t.Fatalf("accepted a key KeyInfo cannot describe: %v", err)
		}
	})
}

func FuzzURIPattern(f *testing.F) {
	f.Add("spiffe://{{trust_domain}}/{{org_id}}/*", "spiffe://cullis.local/acme/a1")
	f.Add("spiffe://{{trust_domain}}/{{org_id}}/{user|agent|workload}/*", "spiffe://cullis.local/acme/user/bob")
	f.Add("spiffe://x/{a|}/*", "spiffe://x//b")
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		p, err := CompileURIPattern(pattern, "cullis.local", "acme")
		if err != nil {
			return
		}
		u, err := url.Parse(uri)
		if err != nil {
			return
		}
		if _, err := p.Match(u); err == nil && !strings.HasPrefix(u.String(), "spiffe://"+p.trustDomain.Name()+"/") {
			t.Fatalf("pattern %q matched %q outside its trust domain", pattern, uri)
		}
	})
}

// FuzzLeafTemplate drives the profile check with arbitrary CSRs and
// patterns and checks the invariants no accepted CSR may break.
func FuzzLeafTemplate(f *testing.F) {
	f.Add(testpki.AgentCSR(f, "seed"), "spiffe://{{trust_domain}}/{{org_id}}/*", int64(3600))
	f.Add(testpki.AgentCSR(f, "seed"), "spiffe://{{trust_domain}}/{{org_id}}/{a|seed}", int64(0))
	issuerCert := testpki.MakeCert(f, testpki.CACert{Key: testpki.NewECKey(f, elliptic.P256()), IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	f.Fuzz(func(t *testing.T, csrText, pattern string, ttlSeconds int64) {
		req, err := ParseCSR(csrText)
		if err != nil {
			return
		}
		r := DefaultRoles()[RoleAgent]
		r.URISANPattern = pattern
		r.AllowedKeyTypes = append(r.AllowedKeyTypes, KeyTypeEd25519)
		if r.Validate() != nil {
			return
		}
		tmpl, _, err := r.LeafTemplate(req, IssueParams{
			TrustDomain: "cullis.local", OrgID: "acme", TTL: time.Duration(ttlSeconds) * time.Second,
			Now: time.Now(), Issuer: issuerCert, TruncateLeaf: true,
		})
		if err != nil {
			if !IsInput(err) {
				t.Fatalf("non-input error: %v", err)
			}
			return
		}
		if tmpl.IsCA || !tmpl.BasicConstraintsValid || tmpl.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
			t.Fatalf("accepted CSR yields a CA-capable template")
		}
		if req.wantsCA || len(tmpl.URIs) != r.URISANCount || len(tmpl.DNSNames)+len(tmpl.IPAddresses)+len(tmpl.EmailAddresses) != 0 {
			t.Fatalf("accepted CSR breaks the role: wantsCA=%v URIs=%d", req.wantsCA, len(tmpl.URIs))
		}
		if tmpl.NotAfter.After(issuerCert.NotAfter) || !tmpl.NotAfter.After(tmpl.NotBefore) {
			t.Fatalf("validity %s..%s is outside the issuer's", tmpl.NotBefore, tmpl.NotAfter)
		}
	})
}

func FuzzParsePublicKeyPEM(f *testing.F) {
	f.Add("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		pub, err := ParsePublicKeyPEM(text)
		if err != nil {
			if !IsInput(err) {
				t.Fatalf("non-input error: %v", err)
			}
			return
		}
		if _, _, err := KeyInfo(pub); err != nil {
			t.Fatalf("accepted a key KeyInfo cannot describe: %v", err)
		}
	})
}
