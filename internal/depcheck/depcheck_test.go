package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tally-sig/tally"

// pkg is the part of `go list -json` the rules read.
type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
	Imports    []string // direct imports of the non-test files
	Deps       []string // every package the non-test files need, transitively
}

// listModule runs `go list -json ./...` at the module root: the non-test
// imports of every package of the module.
func listModule(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the dependency rules need the go command on PATH: %v", err)
	}
	root, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-json", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages: not the tally module?", len(pkgs))
	}
	return pkgs
}

// rel is a package's path inside the module ("" for a package outside it).
func rel(importPath string) string {
	if importPath == module {
		return "."
	}
	r, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	return r
}

// under says whether the module package r is dir or below it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// isTool says whether a package is a program or a test harness rather than
// the library: cmd/tally, the scripts, and internal test support.
func isTool(p pkg) bool {
	r := rel(p.ImportPath)
	return p.Name == "main" || under(r, "cmd") || under(r, "scripts") ||
		under(r, "internal/interop") || under(r, "internal/sample") || under(r, "internal/testkeys") || under(r, "internal/depcheck")
}

// The registry client: what only release/registry may import.
var registryClient = []string{
	"github.com/google/go-containerregistry/pkg/authn",
	"github.com/google/go-containerregistry/pkg/v1/remote",
}

const urfave = "github.com/urfave/cli/v2"

// violations checks the import rules and returns one line per violation.
func violations(pkgs []pkg) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		seen[r] = true
		// Leaves import no tally package.
		for _, leaf := range []string{"sigstore", "gitstore", "buildout"} {
			if !under(r, leaf) {
				continue
			}
			for _, imp := range p.Imports {
				if ir := rel(imp); ir != "" && !under(ir, leaf) {
					add("%s is a leaf package but imports %s", p.ImportPath, imp)
				}
			}
		}
		// gitstore's object store and cache know nothing of gitstore.
		if under(r, "gitstore/internal") {
			for _, imp := range p.Imports {
				if ir := rel(imp); ir != "" && !under(ir, "gitstore/internal") {
					add("%s is below gitstore but imports %s", p.ImportPath, imp)
				}
			}
		}
		// The guard and the judgement's packages never carry the registry client.
		if under(r, "hooks") || under(r, "release/quorum") || under(r, "release/policy") || under(r, "release/record") ||
			under(r, "release/merge") || under(r, "sigstore") || under(r, "gitstore") {
			for _, d := range p.Deps {
				if slices.Contains(registryClient, d) {
					add("%s must not depend on the registry client, but needs %s", p.ImportPath, d)
				}
			}
		}
		// The guard and release's own packages sit below the verbs.
		if under(r, "hooks") || (under(r, "release") && r != "release") {
			for _, d := range p.Deps {
				if d == module+"/release" {
					add("%s depends on %s/release: import release/policy, record or quorum instead", p.ImportPath, module)
				}
			}
		}
		// Only release/registry imports the registry client directly.
		if !under(r, "release/registry") && !isTool(p) {
			for _, imp := range p.Imports {
				if slices.Contains(registryClient, imp) {
					add("%s imports %s: only release/registry may", p.ImportPath, imp)
				}
			}
		}
		// Nothing but cmd/tally uses urfave/cli.
		if !under(r, "cmd/tally") {
			for _, d := range append(slices.Clone(p.Imports), p.Deps...) {
				if d == urfave {
					add("%s depends on %s: only cmd/tally may", p.ImportPath, urfave)
					break
				}
			}
		}
		// No library package depends on a command.
		if !isTool(p) {
			for _, d := range p.Deps {
				if ir := rel(d); ir != "" && under(ir, "cmd") {
					add("%s depends on the command %s", p.ImportPath, d)
				}
			}
		}
	}
	// The rules must have something to check: a renamed package would
	// otherwise pass them silently.
	for _, want := range []string{"sigstore", "gitstore", "gitstore/internal/pack", "gitstore/internal/lru", "buildout", "hooks", "release", "release/policy",
		"release/record", "release/quorum", "release/registry", "release/merge", "cmd/tally"} {
		if !seen[want] {
			add("package %s is missing: update the rules of internal/depcheck", want)
		}
	}
	sort.Strings(out)
	return out
}

// envCalls are the calls only cmd/tally may make: reading the environment
// and deciding the exit code.
var envCalls = []string{"Exit", "Getenv", "LookupEnv", "Environ"}

// allowedCalls are the library's known exceptions, by file and call, each
// with its reason.
var allowedCalls = map[string]string{
	// gpg runs with the caller's environment (GNUPGHOME, the agent) plus
	// LC_ALL=C; sigstore passes it through and decides nothing from it.
	"sigstore/gpg.go os.Environ": "passed through to the gpg child process",
	// fetch and push run git with the user's environment, so that their
	// credential helpers, GIT_SSH_COMMAND and proxies apply; gitstore only
	// removes what would point git at another repository.
	"gitstore/remote.go os.Environ": "passed through to the git child process",
}

// callViolations scans the non-test files of the library packages for
// calls of os.Exit, os.Getenv, os.LookupEnv and os.Environ.
func callViolations(t *testing.T, pkgs []pkg) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, p := range pkgs {
		if isTool(p) || rel(p.ImportPath) == "" {
			continue
		}
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("parsing %s: %v", path, err)
			}
			out = append(out, osCalls(fset, f, filepath.ToSlash(filepath.Join(rel(p.ImportPath), name)))...)
		}
	}
	sort.Strings(out)
	return out
}

// osCalls lists the forbidden os calls in one file (named by its module path).
func osCalls(fset *token.FileSet, f *ast.File, file string) []string {
	osName := ""
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path == "os" {
			osName = "os"
			if imp.Name != nil {
				osName = imp.Name.Name
			}
		}
	}
	if osName == "" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != osName || !slices.Contains(envCalls, sel.Sel.Name) {
			return true
		}
		if _, ok := allowedCalls[file+" os."+sel.Sel.Name]; ok {
			return true
		}
		out = append(out, fmt.Sprintf("%s:%d: os.%s in a library package: only cmd/tally reads the environment and decides exit codes",
			file, fset.Position(sel.Pos()).Line, sel.Sel.Name))
		return true
	})
	return out
}

func TestImportRules(t *testing.T) {
	for _, v := range violations(listModule(t)) {
		t.Error(v)
	}
}

func TestNoEnvironmentOrExitInLibraries(t *testing.T) {
	for _, v := range callViolations(t, listModule(t)) {
		t.Error(v)
	}
}

// TestRulesCatchViolations runs the rules on made-up packages that break
// each of them, so a rule that stopped matching would be noticed.
func TestRulesCatchViolations(t *testing.T) {
	pkgs := []pkg{
		{ImportPath: module + "/sigstore", Name: "sigstore", Imports: []string{module + "/gitstore"}},
		{ImportPath: module + "/gitstore", Name: "gitstore"},
		{ImportPath: module + "/gitstore/internal/pack", Name: "pack", Imports: []string{module + "/gitstore/internal/lru", module + "/gitstore"}},
		{ImportPath: module + "/gitstore/internal/lru", Name: "lru"},
		{ImportPath: module + "/buildout", Name: "buildout"},
		{ImportPath: module + "/hooks", Name: "hooks", Deps: []string{module + "/release", registryClient[1]}},
		{ImportPath: module + "/release", Name: "release", Imports: []string{registryClient[0]}},
		{ImportPath: module + "/release/policy", Name: "policy", Deps: []string{urfave}},
		{ImportPath: module + "/release/record", Name: "record"},
		{ImportPath: module + "/release/quorum", Name: "quorum", Deps: []string{module + "/cmd/tally"}},
		{ImportPath: module + "/release/registry", Name: "registry", Imports: registryClient},
		{ImportPath: module + "/release/merge", Name: "merge", Deps: []string{module + "/release", registryClient[0]}},
	}
	got := violations(pkgs)
	want := []string{
		module + "/hooks depends on " + module + "/release: import release/policy, record or quorum instead",
		module + "/hooks must not depend on the registry client, but needs " + registryClient[1],
		module + "/release imports " + registryClient[0] + ": only release/registry may",
		module + "/release/merge depends on " + module + "/release: import release/policy, record or quorum instead",
		module + "/release/merge must not depend on the registry client, but needs " + registryClient[0],
		module + "/release/policy depends on " + urfave + ": only cmd/tally may",
		module + "/release/quorum depends on the command " + module + "/cmd/tally",
		module + "/sigstore is a leaf package but imports " + module + "/gitstore",
		module + "/gitstore/internal/pack is below gitstore but imports " + module + "/gitstore",
		"package cmd/tally is missing: update the rules of internal/depcheck",
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got %q\nwant %q", got, want)
	}

	src := "package x\nimport xos \"os\"\nfunc f() { _ = xos.Getenv(\"A\"); xos.Exit(1) }\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := osCalls(fset, f, "release/x.go")
	if len(calls) != 2 || !strings.Contains(calls[0], "os.Getenv") || !strings.Contains(calls[1], "os.Exit") {
		t.Errorf("osCalls = %q, want os.Getenv and os.Exit", calls)
	}
}
