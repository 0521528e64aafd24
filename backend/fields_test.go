package backend

import (
	"crypto/elliptic"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// A field of the wrong type (issue 12, defect 8) is refused with a message that names
// the field and never the value, on every path and for every field.
func TestFields_WrongTypeNeverEchoed(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	const secret = "-----BEGIN PRIVATE KEY-----MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
	concrete := map[string]string{"roles/" + framework.GenericNameRegex("name"): "roles/x", "data/" + caNamePattern: "data/org-ca", "kv-export/" + caNamePattern: "kv-export/org-ca", "sign/" + framework.GenericNameRegex("role"): "sign/agent"}
	checked := 0
	for _, p := range b.Backend.Paths {
		pattern := strings.TrimSuffix(strings.TrimPrefix(p.Pattern, "^"), "$")
		path := strings.TrimSuffix(pattern, "(/"+framework.GenericNameRegex("role")+")?")
		if c, ok := concrete[pattern]; ok {
			path = c
		}
		var update bool
		for op := range p.Operations {
			update = update || op == logical.UpdateOperation || op == logical.CreateOperation
		}
		if !update {
			continue
		}
		fields := make([]string, 0, len(p.Fields))
		for k := range p.Fields {
			fields = append(fields, k)
		}
		sort.Strings(fields)
		for _, k := range fields {
			if k == "name" || k == "role" {
				continue // from the URL
			}
			// A value no schema type but TypeString can take holds the
			// secret; a string field gets an object holding it.
			var bad any = secret
			if p.Fields[k].Type == framework.TypeString {
				bad = map[string]any{"pem": secret}
			}
			if p.Fields[k].Type == framework.TypeCommaStringSlice || p.Fields[k].Type == framework.TypeStringSlice {
				bad = map[string]any{"pem": secret}
			}
			resp, err := requestErr(b, s, logical.UpdateOperation, path, map[string]any{k: bad})
			if err != nil || resp == nil || !resp.IsError() {
				t.Errorf("%s %s=<wrong type>: answered %v, %v; want a 400", path, k, resp, err)
				continue
			}
			if msg := resp.Error().Error(); strings.Contains(msg, "MIGHAgEAMBMG") || !strings.Contains(msg, k) {
				t.Errorf("%s %s=<wrong type>: message %q quotes the value or does not name the field", path, k, msg)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d fields checked; the path table is not what this test expects", checked)
	}
}

// TestFields_ValueNeverEchoed: a key sent in a field of the right type but
// the wrong meaning (generate org_id=@key.pem) is refused without the
// answer repeating it, for every text field of every writable path.
func TestFields_ValueNeverEchoed(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	const secret = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	pemFields := map[string]bool{"key_pem": true, "cert_pem": true, "chain_pem": true, "csr": true, "csrs": true, "public_key": true}
	writes := map[string]string{"config": "config", "generate": "generate", "import": "import", "intermediate/import": "intermediate/import", "intermediate/generate": "intermediate/generate", "intermediate/rotate": "intermediate/rotate", "roles/x": "roles/x", "sign-csr": "sign-csr", "sign-public-key": "sign-public-key"}
	checked := 0
	for path := range writes {
		p := b.Backend.Route(path)
		if p == nil {
			t.Fatalf("no route for %s", path)
		}
		for k, f := range p.Fields {
			if pemFields[k] || k == "name" && path == "roles/x" || k == "role" {
				continue
			}
			if f.Type != framework.TypeString && f.Type != framework.TypeCommaStringSlice {
				continue
			}
			data := map[string]any{k: secret}
			if path == "sign-public-key" {
				data["public_key"] = testpki.PublicKeyPEM(t, testpki.NewECKey(t, elliptic.P256()))
				if k == "spiffe_id" {
					data = map[string]any{"public_key": data["public_key"], "spiffe_id": secret}
				}
			}
			resp, err := requestErr(b, s, logical.UpdateOperation, path, data)
			text := fmt.Sprint(resp, err)
			if resp != nil && resp.Data != nil {
				text += fmt.Sprint(resp.Data)
			}
			if strings.Contains(text, "MIGHAgEAMBMG") {
				t.Errorf("%s %s=<a key>: the answer repeats it: %.200s", path, k, text)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d fields checked", checked)
	}
}
