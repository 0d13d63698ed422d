package hooks

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
)

// fakeTally writes an executable that records how it was called.
func fakeTally(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\necho \"$0 $*\" >> \"" + filepath.Join(dir, "calls") + "\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstall(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	bin := fakeTally(t, root, "it's tally")
	bare, err := gitstore.Init(filepath.Join(root, "server.git"), true, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	clone, err := gitstore.Init(filepath.Join(root, "clone"), false, "")
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()

	if _, err := Install(bare, InstallOptions{Binary: bin}); !errors.Is(err, ErrWrongRepository) {
		t.Errorf("client hooks into a bare repository: %v", err)
	}
	if _, err := Install(clone, InstallOptions{Server: true, Binary: bin}); !errors.Is(err, ErrWrongRepository) {
		t.Errorf("the server hook into a clone: %v", err)
	}
	if _, err := Install(bare, InstallOptions{Server: true, Binary: "tally"}); err == nil {
		t.Errorf("a relative program path was accepted")
	}
	if _, err := Install(bare, InstallOptions{Server: true, Binary: filepath.Join(root, "missing")}); err == nil {
		t.Errorf("a missing program was accepted")
	}

	res, err := Install(bare, InstallOptions{Server: true, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(root, "server.git", "hooks", "pre-receive")
	if len(res.Hooks) != 1 || res.Hooks[0] != hook {
		t.Fatalf("installed %q", res.Hooks)
	}
	data, _ := os.ReadFile(hook)
	if fi, _ := os.Stat(hook); fi.Mode()&0o111 == 0 || !strings.Contains(string(data), `recorded='`+strings.ReplaceAll(bin, "'", `'\''`)+`'`) {
		t.Errorf("hook mode %v, content:\n%s", fi.Mode(), data)
	}
	// Installing again replaces tally's own hook.
	if _, err := Install(bare, InstallOptions{Server: true, Binary: bin}); err != nil {
		t.Errorf("reinstalling: %v", err)
	}

	// A foreign hook is refused, then kept aside with Force.
	foreign := filepath.Join(root, "clone", ".git", "hooks", "pre-push")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(clone, InstallOptions{Binary: bin}); !errors.Is(err, ErrForeignHook) || !strings.Contains(err.Error(), "pre-push") {
		t.Errorf("a foreign hook: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "clone", ".git", "hooks", "pre-commit")); err == nil {
		t.Errorf("a refused install wrote pre-commit")
	}
	res, err = Install(clone, InstallOptions{Binary: bin, Force: true})
	if err != nil || len(res.Replaced) != 1 || len(res.Hooks) != 2 {
		t.Fatalf("Force: %v %+v", err, res)
	}
	if kept, _ := os.ReadFile(foreign + ".before-tally"); string(kept) != "#!/bin/sh\nexit 0\n" {
		t.Errorf("the foreign hook was not kept: %q", kept)
	}
}

func TestInstallHooksPath(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	root := t.TempDir()
	bin := fakeTally(t, root, "tally")
	dir := filepath.Join(root, "clone")
	interop.Git(t, "", nil, "init", "-q", dir)
	interop.Git(t, dir, nil, "config", "core.hooksPath", "my-hooks")
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	res, err := Install(repo, InstallOptions{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != filepath.Join(dir, "my-hooks") {
		t.Errorf("hooks went to %s", res.Dir)
	}
}

// TestHookScriptFindsTally runs the installed script: it calls the recorded
// program, falls back to tally on PATH when that is gone, and refuses when
// there is none.
func TestHookScriptFindsTally(t *testing.T) {
	t.Parallel()
	interop.Require(t, "sh")
	root := t.TempDir()
	recorded := fakeTally(t, root, "tally-recorded")
	onPath := filepath.Join(root, "bin")
	if err := os.Mkdir(onPath, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeTally(t, onPath, "tally")
	hook := filepath.Join(root, "pre-receive")
	if err := writeExecutable(hook, hookScript("pre-receive", recorded)); err != nil {
		t.Fatal(err)
	}
	run := func(path string) (string, error) {
		cmd := exec.Command(hook, "x")
		cmd.Env = []string{"PATH=" + path}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	calls := func(dir string) string { b, _ := os.ReadFile(filepath.Join(dir, "calls")); return string(b) }
	if _, err := run("/usr/bin:/bin"); err != nil || !strings.Contains(calls(root), "tally-recorded hook pre-receive x") {
		t.Errorf("recorded program: %v, calls %q", err, calls(root))
	}
	os.Remove(recorded)
	if _, err := run(onPath + ":/usr/bin:/bin"); err != nil || !strings.Contains(calls(onPath), "hook pre-receive x") {
		t.Errorf("PATH fallback: %v, calls %q", err, calls(onPath))
	}
	out, err := run("/usr/bin:/bin")
	if err == nil || !strings.Contains(out, "tally: refused: the tally program "+recorded+" is gone") {
		t.Errorf("no tally at all: %v %q", err, out)
	}
}
