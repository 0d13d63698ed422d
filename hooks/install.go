package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/config"

	"github.com/tally-sig/tally/gitstore"
)

// ErrForeignHook means a hook that tally did not install is in the way;
// InstallOptions.Force moves it aside.
var ErrForeignHook = errors.New("a hook that tally did not install is in the way")

// ErrWrongRepository means the hooks asked for do not fit the repository:
// the server hook goes into the bare repository that receives pushes, the
// client hooks into a clone with a working tree.
var ErrWrongRepository = errors.New("wrong kind of repository for these hooks")

// hookMarker is in every hook tally installs; a hook without it is foreign.
const hookMarker = "# tally-hook:"

// ServerHooks and ClientHooks are the hooks Install writes.
var (
	ServerHooks = []string{"pre-receive"}
	ClientHooks = []string{"pre-commit", "pre-push"}
)

// InstallOptions says which hooks to install.
type InstallOptions struct {
	// Server installs pre-receive into a bare repository; otherwise
	// pre-commit and pre-push go into a clone.
	Server bool
	// Force replaces hooks tally did not install, keeping each as
	// <hook>.before-tally.
	Force bool
	// Binary is the absolute path of the tally program the hooks run; they
	// fall back to tally on PATH when it is gone.
	Binary string
	// Lookaside (with Server) is the absolute path of a directory a web
	// server serves: a post-receive hook is installed too, which exports
	// the lookaside tree of the default branch there after each accepted
	// push (release.ExportLookaside).
	Lookaside string
}

// InstallResult says what Install did.
type InstallResult struct {
	Dir      string   `json:"dir"`                // the hooks directory
	Hooks    []string `json:"hooks"`              // the hooks written
	Replaced []string `json:"replaced,omitempty"` // foreign hooks moved aside (with Force)
	Binary   string   `json:"binary"`             // the tally the hooks run
}

// Install writes the hooks that run "tally hook <name>" into the
// repository's hooks directory (core.hooksPath when set). A hook tally
// installed before is replaced; any other hook is refused with
// ErrForeignHook unless Force.
func Install(repo *gitstore.Repo, opts InstallOptions) (*InstallResult, error) {
	if repo.GitDir() == "" {
		return nil, fmt.Errorf("installing hooks: %w: the repository is in memory", ErrWrongRepository)
	}
	switch {
	case opts.Server && !repo.Bare():
		return nil, fmt.Errorf("installing the server hook: %w: %s has a working tree; the server hook goes into the bare repository that receives pushes", ErrWrongRepository, repo.WorkDir())
	case !opts.Server && repo.Bare():
		return nil, fmt.Errorf("installing the client hooks: %w: %s is bare; give --server to install the server hook there", ErrWrongRepository, repo.GitDir())
	}
	if opts.Lookaside != "" && !opts.Server {
		return nil, fmt.Errorf("installing hooks: %w: a lookaside directory is refreshed by the server's post-receive hook; give --server", ErrWrongRepository)
	}
	if opts.Lookaside != "" && !filepath.IsAbs(opts.Lookaside) {
		return nil, fmt.Errorf("installing hooks: the lookaside directory %q is not an absolute path", opts.Lookaside)
	}
	if !filepath.IsAbs(opts.Binary) {
		return nil, fmt.Errorf("installing hooks: the tally program %q is not an absolute path", opts.Binary)
	}
	if fi, err := os.Stat(opts.Binary); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("installing hooks: the tally program %s is not an executable file", opts.Binary)
	}
	dir, err := hooksDir(repo)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("installing hooks: %w", err)
	}
	names := ClientHooks
	if opts.Server {
		names = ServerHooks
	}
	if opts.Lookaside != "" {
		names = append(append([]string(nil), names...), "post-receive")
	}
	res := &InstallResult{Dir: dir, Binary: opts.Binary}
	// Check every hook before writing any, so a refusal changes nothing.
	var foreign []string
	for _, name := range names {
		old, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("installing hooks: %w", err)
		case !bytes.Contains(old, []byte(hookMarker)):
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 && !opts.Force {
		return nil, fmt.Errorf("installing hooks: %w: %s in %s", ErrForeignHook, strings.Join(foreign, ", "), dir)
	}
	for _, name := range foreign {
		p := filepath.Join(dir, name)
		backup := p + ".before-tally"
		if _, err := os.Lstat(backup); err == nil {
			return nil, fmt.Errorf("installing hooks: %s exists already: move it away first", backup)
		}
		if err := os.Rename(p, backup); err != nil {
			return nil, fmt.Errorf("installing hooks: %w", err)
		}
		res.Replaced = append(res.Replaced, backup)
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		var extra []string
		if name == "post-receive" {
			extra = []string{opts.Lookaside}
		}
		if err := writeExecutable(p, hookScript(name, opts.Binary, extra...)); err != nil {
			return nil, fmt.Errorf("installing hooks: %w", err)
		}
		res.Hooks = append(res.Hooks, p)
	}
	return res, nil
}

// hooksDir returns where git looks for the repository's hooks.
func hooksDir(repo *gitstore.Repo) (string, error) {
	common := commonDir(repo.GitDir())
	if b, err := os.ReadFile(filepath.Join(common, "config")); err == nil {
		cfg := config.NewConfig()
		if err := cfg.Unmarshal(b); err != nil {
			return "", fmt.Errorf("reading %s: %w", filepath.Join(common, "config"), err)
		}
		if hp := cfg.Raw.Section("core").Option("hooksPath"); hp != "" {
			if !filepath.IsAbs(hp) {
				// Relative to where hooks run: the working tree, or the
				// git directory of a bare repository.
				root := repo.WorkDir()
				if root == "" {
					root = repo.GitDir()
				}
				hp = filepath.Join(root, hp)
			}
			return hp, nil
		}
	}
	return filepath.Join(common, "hooks"), nil
}

// hookScript is the shell script of one hook: it runs the tally recorded at
// install time, or tally on PATH when that is gone, and refuses (fails
// closed) when there is none.
func hookScript(name, binary string, extra ...string) []byte {
	args := name
	for _, e := range extra {
		args += " " + shellQuote(e)
	}
	return []byte(fmt.Sprintf(`#!/bin/sh
%s %s (installed by "tally hooks install"; reinstall with --force to change it)
# It runs tally's check of a guarded signatures repository; see the README
# section "Guarding a signatures repository".
recorded=%s
tally=$recorded
if [ ! -x "$tally" ]; then
	tally=$(command -v tally) || {
		echo "tally: refused: the tally program $recorded is gone and there is none on PATH; reinstall the hook (tally hooks install --force)" >&2
		exit 1
	}
fi
exec "$tally" hook %s "$@"
`, hookMarker, name, shellQuote(binary), args))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeExecutable writes data to p atomically with mode 0755.
func writeExecutable(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
