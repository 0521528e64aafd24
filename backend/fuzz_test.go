package backend

import (
	"crypto/elliptic"
	"crypto/x509"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ (CSRs and keys made by
// openssl); run a target with e.g. `go test ./backend -fuzz FuzzParseCSR`.

func FuzzParseCSR(f *testing.F) {
	f.Add(agentCSR(f, "seed"))
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		req, err := parseCSR(text)
		if err != nil {
			if !isInputError(err) {
				t.Fatalf("parseCSR returned a non-input error: %v", err)
			}
			return
		}
		if err := req.csr.CheckSignature(); err != nil {
			t.Fatalf("parseCSR accepted a CSR whose signature does not verify: %v", err)
		}
	})
}

var base64Line = regexp.MustCompile(`^[A-Za-z0-9+/=]+$`)

func FuzzParsePrivateKeyPEM(f *testing.F) {
	f.Add(pkcs8PEM(f, newEd25519Key(f)))
	f.Add("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		key, err := parsePrivateKeyPEM(text)
		if err != nil {
			if !isInputError(err) {
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
		if _, _, err := keyInfo(key.Public()); err != nil {
			t.Fatalf("accepted a key keyInfo cannot describe: %v", err)
		}
	})
}

func FuzzURIPattern(f *testing.F) {
	f.Add("spiffe://{{trust_domain}}/{{org_id}}/*", "spiffe://cullis.local/acme/a1")
	f.Add("spiffe://{{trust_domain}}/{{org_id}}/{user|agent|workload}/*", "spiffe://cullis.local/acme/user/bob")
	f.Add("spiffe://x/{a|}/*", "spiffe://x//b")
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		p, err := compileURIPattern(pattern, "cullis.local", "acme")
		if err != nil {
			return
		}
		u, err := url.Parse(uri)
		if err != nil {
			return
		}
		if _, err := p.match(u); err == nil && !strings.HasPrefix(u.String(), "spiffe://"+p.trustDomain.Name()+"/") {
			t.Fatalf("pattern %q matched %q outside its trust domain", pattern, uri)
		}
	})
}

// FuzzLeafTemplate drives the profile check with arbitrary CSRs and
// patterns and checks the invariants no accepted CSR may break.
func FuzzLeafTemplate(f *testing.F) {
	f.Add(agentCSR(f, "seed"), "spiffe://{{trust_domain}}/{{org_id}}/*", int64(3600))
	f.Add(agentCSR(f, "seed"), "spiffe://{{trust_domain}}/{{org_id}}/{a|seed}", int64(0))
	issuerCert := makeCert(f, caCertSpec{key: newECKey(f, elliptic.P256()), isCA: true, keyUsage: x509.KeyUsageCertSign})
	f.Fuzz(func(t *testing.T, csrText, pattern string, ttlSeconds int64) {
		req, err := parseCSR(csrText)
		if err != nil {
			return
		}
		r := defaultRoles()[roleAgent]
		r.URISANPattern = pattern
		r.AllowedKeyTypes = append(r.AllowedKeyTypes, keyTypeEd25519)
		if r.validate() != nil {
			return
		}
		tmpl, _, err := r.leafTemplate(req, issueParams{
			TrustDomain: "cullis.local", OrgID: "acme", TTL: time.Duration(ttlSeconds) * time.Second,
			Now: time.Now(), Issuer: issuerCert, TruncateLeaf: true,
		})
		if err != nil {
			if !isInputError(err) {
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
		pub, err := parsePublicKeyPEM(text)
		if err != nil {
			if !isInputError(err) {
				t.Fatalf("non-input error: %v", err)
			}
			return
		}
		if _, _, err := keyInfo(pub); err != nil {
			t.Fatalf("accepted a key keyInfo cannot describe: %v", err)
		}
	})
}
