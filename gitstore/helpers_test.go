package gitstore

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/internal/testkeys"
)

// testTime is the fixed clock of the tests, so that hashes are stable.
var testTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testTime }

func testAuthor() object.Signature {
	return object.Signature{Name: "Tally Test", Email: "test@example.org", When: testTime}
}

// backend makes a fresh repository of one kind for the contract tests.
type backend struct {
	name     string
	worktree bool
	open     func(t testing.TB) *Repo
}

func backends() []backend {
	return []backend{
		{"memory", true, func(t testing.TB) *Repo { return memRepo(true) }},
		{"memory-bare", false, func(t testing.TB) *Repo { return memRepo(false) }},
		{"disk", true, func(t testing.TB) *Repo { return diskRepo(t, false) }},
		{"disk-bare", false, func(t testing.TB) *Repo { return diskRepo(t, true) }},
	}
}

func memRepo(worktree bool) *Repo {
	r := NewMemory(worktree)
	r.now = testClock
	return r
}

func diskRepo(t testing.TB, bare bool) *Repo {
	t.Helper()
	r, err := Init(t.TempDir(), bare, "")
	if err != nil {
		t.Fatal(err)
	}
	r.now = testClock
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing: %v", err)
		}
	})
	return r
}

// mustCommit commits changes on top of parent (zero for the first commit)
// to main and returns the new commit.
func mustCommit(t testing.TB, r *Repo, parent plumbing.Hash, msg string, changes ...Change) plumbing.Hash {
	t.Helper()
	h, err := r.Commit(CommitRequest{
		Branch:  "main",
		Parents: []plumbing.Hash{parent},
		Changes: changes,
		Message: msg,
		Author:  testAuthor(),
	})
	if err != nil {
		t.Fatalf("commit %q: %v", msg, err)
	}
	return h
}

func write(path, data string) Change { return Change{Path: path, Data: []byte(data)} }
func del(path string) Change         { return Change{Path: path, Delete: true} }

var (
	bobOnce   sync.Once
	bobEntity *openpgp.Entity
)

// bobSign signs like a tally signer: an armored detached signature by the
// fast Ed25519 test key "bob". It signs at the real time, not testTime: the
// test keys are younger than testTime.
func bobSign(data []byte) ([]byte, error) {
	bobOnce.Do(func() {
		keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret("bob")))
		if err != nil {
			panic(err)
		}
		bobEntity = keys[0]
	})
	var b bytes.Buffer
	err := openpgp.ArmoredDetachSign(&b, bobEntity, bytes.NewReader(data), nil)
	return b.Bytes(), err
}

// requireTool returns the path of an external tool for an interop test. It
// skips loudly when the tool is missing, and fails instead when CI is set.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required when CI is set: %v", name, err)
		}
		t.Skipf("SKIPPING interop test: %s not found in PATH", name)
	}
	return p
}

// gitEnv is an environment for running git without the user's or the
// system's configuration.
func gitEnv(t testing.TB, extra ...string) []string {
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Tally Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=Tally Test", "GIT_COMMITTER_EMAIL=test@example.org",
		"LC_ALL=C",
	}
	return append(env, extra...)
}

// runGit runs git in dir and returns its standard output; it fails the test
// if git fails.
func runGit(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := gitOutput(dir, env, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// gitOutput runs git in dir and returns its standard output; a failure's
// error includes the standard error.
func gitOutput(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}
