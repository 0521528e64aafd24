package backend

import (
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// A field of the wrong type (issue 12, defect 8) is refused with a message that names
// the field and never the value, on every path and for every field.
func TestFields_WrongTypeNeverEchoed(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	const secret = "-----BEGIN PRIVATE KEY-----MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
	concrete := map[string]string{"roles/" + framework.GenericNameRegex("name"): "roles/x", "data/" + caNamePattern: "data/org-ca", "kv-export/" + caNamePattern: "kv-export/org-ca"}
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
