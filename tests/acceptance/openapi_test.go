package acceptance

import (
	"strings"
	"testing"
)

// mountPaths are every path the engine serves, as the OpenAPI document and
// path-help name them.
var mountPaths = []string{
	"config", "generate", "import", "cert", "cert/pem", "roles/", "roles/{name}",
	"sign-csr", "sign-csr/{role}", "sign-public-key", "sign-public-key/{role}",
	"intermediate/generate", "intermediate/import", "intermediate/cert", "intermediate/rotate",
	"data/{name}", "metadata/{name}", "kv-export/{name}", "health",
}

// TestOpenAPI_AndHelp: Vault's OpenAPI document lists every path of the
// mount with a summary and described fields, and path-help of every path
// has a description and a CLI example.
func TestOpenAPI_AndHelp(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	spec, err := server.root.Logical().ReadWithContext(ctx, "sys/internal/specs/openapi")
	if err != nil || spec == nil {
		t.Fatalf("openapi: %v", err)
	}
	paths, _ := spec.Data["paths"].(map[string]any)
	for _, p := range mountPaths {
		item, ok := paths["/"+mount+"/"+p].(map[string]any)
		if !ok {
			t.Errorf("OpenAPI lacks /%s/%s", mount, p)
			continue
		}
		summarised := false
		for _, op := range []string{"get", "post", "delete", "list"} {
			o, ok := item[op].(map[string]any)
			if !ok {
				continue
			}
			if s, _ := o["summary"].(string); s != "" {
				summarised = true
			}
			// Every request field has a description.
			if body, ok := o["requestBody"].(map[string]any); ok {
				content := body["content"].(map[string]any)["application/json"].(map[string]any)
				schema := content["schema"].(map[string]any)
				if ref, ok := schema["$ref"].(string); ok {
					name := ref[strings.LastIndex(ref, "/")+1:]
					schema = spec.Data["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
				}
				props, _ := schema["properties"].(map[string]any)
				for field, def := range props {
					if d, _ := def.(map[string]any)["description"].(string); d == "" {
						t.Errorf("%s %s: field %s has no description", op, p, field)
					}
				}
			}
		}
		if !summarised {
			t.Errorf("/%s/%s has no operation summary", mount, p)
		}
		helpPath := strings.NewReplacer("{name}", "org-ca", "{role}", "agent").Replace(p)
		if p == "roles/{name}" {
			helpPath = "roles/agent"
		}
		h, err := server.root.Logical().ReadWithDataWithContext(ctx, mount+"/"+helpPath, map[string][]string{"help": {"1"}})
		if err != nil || h == nil {
			t.Errorf("path-help %s: %v", helpPath, err)
			continue
		}
		text, _ := h.Data["help"].(string)
		if !strings.Contains(text, "## DESCRIPTION") || !strings.Contains(text, "$ vault ") && !strings.Contains(text, "$ curl ") {
			t.Errorf("path-help %s lacks a description or a CLI example", helpPath)
		}
	}
}
