package gitstore

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/internal/interop"
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

// requireTool, gitEnv and runGit forward to internal/interop, the shared
// harness for tests that drive real tools; they remain for the tests of
// this package that still call them.

func requireTool(t testing.TB, name string) { t.Helper(); interop.Require(t, name) }

func gitEnv(t testing.TB, extra ...string) []string { return extra }

func runGit(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	return interop.Git(t, dir, env, args...)
}
