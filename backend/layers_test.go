package backend

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayers keeps the three layers of docs/architecture.md: the issuing
// package imports neither Vault nor backend, no path file touches storage
// itself, and the operator CLI uses backend only for its version.
func TestLayers(t *testing.T) {
	parse := func(glob string) map[string]*ast.File {
		t.Helper()
		names, err := filepath.Glob(glob)
		if err != nil || len(names) == 0 {
			t.Fatalf("no files match %s: %v", glob, err)
		}
		files := map[string]*ast.File{}
		for _, n := range names {
			f, err := parser.ParseFile(token.NewFileSet(), n, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files[n] = f
		}
		return files
	}
	for name, f := range parse("../internal/issuing/*.go") {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(p, "hashicorp/vault") || strings.HasSuffix(p, "vault-plugin-mastio-ca/backend") {
				t.Errorf("%s imports %s: internal/issuing must not depend on Vault or backend", name, p)
			}
		}
	}
	storageCalls := map[string]bool{"Get": true, "Put": true, "Delete": true, "List": true}
	for name, f := range parse("path_*.go") {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if sel.Sel.Name == "StorageEntryJSON" {
				t.Errorf("%s calls StorageEntryJSON: path files pass req.Storage to backend functions", name)
			}
			if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "Storage" && storageCalls[sel.Sel.Name] {
				t.Errorf("%s calls Storage.%s: path files pass req.Storage to backend functions", name, sel.Sel.Name)
			}
			return true
		})
	}
	for name, f := range parse("../cmd/mastio-ca/*.go") {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "backend" && sel.Sel.Name != "Version" && sel.Sel.Name != "Commit" {
					t.Errorf("%s uses backend.%s: the CLI uses internal/issuing, and backend only for its version", name, sel.Sel.Name)
				}
			}
			return true
		})
	}
}
