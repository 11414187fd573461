// Package archtest keeps the layout rules of DESIGN.md true with a test
// rather than with reviews alone.
package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rampartsec/rampart"

// capabilities are the domain packages: they hold types and logic and know
// nothing of HTTP or SQL (the gateway is the exception for HTTP: it is the
// proxy pipeline).
var capabilities = []string{"identity", "tenancy", "oauth", "vault", "audit", "gateway", "privacy", "backup", "trust"}

// httpAdapter lists the packages below a capability whose job is HTTP
// itself. The audit sinks deliver the trail to webhooks and the integration
// client speaks OAuth outward to providers; the OAuth provider adapter sits
// on fosite, whose API is http.Request in, http.ResponseWriter out. The
// capability packages above them stay free of HTTP.
var httpAdapter = map[string]bool{
	"internal/audit/sink":        true,
	"internal/vault/integration": true,
	"internal/oauth/provider":    true,
}

// imports maps each non-test package directory (relative to the repo root)
// to the import paths of its non-test files.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[rel] = append(out[rel], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d packages; is the walk rooted right?", len(out))
	}
	return out
}

// under reports whether dir is internal/<name> or below it.
func under(dir, name string) bool {
	p := "internal/" + name
	return dir == p || strings.HasPrefix(dir, p+"/")
}

func internalPkg(name string) string { return module + "/internal/" + name }

func importsPkg(list []string, name string) bool {
	for _, p := range list {
		if p == internalPkg(name) || strings.HasPrefix(p, internalPkg(name)+"/") {
			return true
		}
	}
	return false
}

func TestCapabilitiesDoNotImportOuterLayers(t *testing.T) {
	for dir, list := range imports(t) {
		for _, c := range capabilities {
			if !under(dir, c) {
				continue
			}
			for _, outer := range []string{"web", "store", "app", "cli"} {
				if importsPkg(list, outer) {
					t.Errorf("%s (capability) imports internal/%s", dir, outer)
				}
			}
			for _, p := range list {
				if p == "database/sql" || strings.HasPrefix(p, "github.com/jackc/pgx") || p == "modernc.org/sqlite" {
					t.Errorf("%s (capability) imports SQL package %s", dir, p)
				}
				if c != "gateway" && !httpAdapter[dir] && (p == "net/http" || strings.HasPrefix(p, "net/http/")) {
					t.Errorf("%s (capability) imports %s", dir, p)
				}
			}
		}
	}
}

func TestVaultAndAuditStayLow(t *testing.T) {
	above := []string{"identity", "tenancy", "oauth", "gateway", "privacy", "backup", "trust"}
	for dir, list := range imports(t) {
		if !under(dir, "vault") && !under(dir, "audit") {
			continue
		}
		for _, a := range above {
			if importsPkg(list, a) {
				t.Errorf("%s imports internal/%s, a capability above it", dir, a)
			}
		}
	}
}

// TestOutboundStaysAtTheBottom keeps internal/outbound (the TLS-3 rule for
// every outbound connection) importable from every layer: it may depend on
// internal/fault and nothing else of Rampart's.
func TestOutboundStaysAtTheBottom(t *testing.T) {
	for dir, list := range imports(t) {
		if !under(dir, "outbound") {
			continue
		}
		for _, p := range list {
			if strings.HasPrefix(p, module+"/") && p != internalPkg("fault") {
				t.Errorf("%s imports %s; internal/outbound may import only internal/fault", dir, p)
			}
		}
	}
}

// TestOutboundHTTPGoesThroughOutbound enforces "a helper used everywhere"
// (TLS-3) for HTTP: outside internal/outbound, no package builds an
// http.Transport or uses the standard library's default client or
// transport (which would verify TLS but allow plaintext anywhere and follow
// redirects). Use outbound.Client, outbound.Transport or outbound.Guard.
func TestOutboundHTTPGoesThroughOutbound(t *testing.T) {
	root, _ := filepath.Abs("../..")
	fset := token.NewFileSet()
	forbidden := map[string]bool{"Transport": true, "DefaultClient": true, "DefaultTransport": true,
		"Get": true, "Head": true, "Post": true, "PostForm": true}
	_ = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || d.Name() == "outbound" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		name := ""
		for _, im := range f.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == "net/http" {
				name = "http"
				if im.Name != nil {
					name = im.Name.Name
				}
			}
		}
		if name == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && forbidden[sel.Sel.Name] {
				if sel.Sel.Name == "Transport" && !isCompositeType(f, sel) {
					return true // *http.Transport as a type is fine; building one is not
				}
				t.Errorf("%s uses http.%s; outbound HTTP goes through internal/outbound (TLS-3)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
}

// isCompositeType reports whether sel is the type of a composite literal
// (http.Transport{…}) in f.
func isCompositeType(f *ast.File, sel *ast.SelectorExpr) bool {
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if cl, ok := n.(*ast.CompositeLit); ok && cl.Type == sel {
			found = true
		}
		return !found
	})
	return found
}

func TestOnlyCLIImportsApp(t *testing.T) {
	for dir, list := range imports(t) {
		if importsPkg(list, "app") && !under(dir, "cli") {
			t.Errorf("%s imports internal/app; only internal/cli may (one composition root)", dir)
		}
	}
}

func TestStoreDoesNotImportOuterLayers(t *testing.T) {
	for dir, list := range imports(t) {
		if !under(dir, "store") {
			continue
		}
		for _, outer := range []string{"web", "app", "cli"} {
			if importsPkg(list, outer) {
				t.Errorf("%s imports internal/%s", dir, outer)
			}
		}
	}
}

// TestNoInitOrUtilPackages enforces "no init() registries" and "no util,
// common, helpers" package names.
func TestNoInitOrUtilPackages(t *testing.T) {
	root, _ := filepath.Abs("../..")
	fset := token.NewFileSet()
	_ = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "util", "utils", "common", "helpers", "misc":
				t.Errorf("package directory %s has a name that says nothing", path)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
				t.Errorf("%s declares init(); wire things in internal/app instead", path)
			}
		}
		return nil
	})
}
