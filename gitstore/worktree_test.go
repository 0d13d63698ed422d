package gitstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

// readWorktree reads a file of the working tree through the Repo's own
// file system (memory or disk).
func readWorktree(t *testing.T, r *Repo, p string) string {
	t.Helper()
	f, err := r.worktree.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeWorktree(t *testing.T, r *Repo, p, data string) {
	t.Helper()
	if err := util.WriteFile(r.worktree, p, []byte(data), 0o666); err != nil {
		t.Fatal(err)
	}
}

func worktreeBackends() []backend {
	var out []backend
	for _, b := range backends() {
		if b.worktree {
			out = append(out, b)
		}
	}
	return out
}

func TestWorktreeFollowsCommits(t *testing.T) {
	t.Parallel()
	for _, b := range worktreeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c := mustCommit(t, r, plumbing.ZeroHash, "one", write("d/a", "1"), write("d/e/b", "2"))
			if got := readWorktree(t, r, "d/e/b"); got != "2" {
				t.Errorf("d/e/b = %q", got)
			}
			c = mustCommit(t, r, c, "two", write("d/a", "one"), del("d/e/b"))
			if got := readWorktree(t, r, "d/a"); got != "one" {
				t.Errorf("d/a = %q", got)
			}
			if _, err := r.worktree.Lstat("d/e"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("emptied directory d/e still exists: %v", err)
			}
			if err := r.Clean(); err != nil {
				t.Errorf("Clean() = %v", err)
			}
			// No temporary files are left behind.
			entries, err := r.worktree.ReadDir("d")
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("d holds %d entries, want 1", len(entries))
			}
			// Committing to another branch leaves the working tree alone.
			setBranch(t, r, "other", c)
			if _, err := r.Commit(CommitRequest{Branch: "other", Parents: []plumbing.Hash{c},
				Changes: []Change{write("d/a", "other")}, Message: "other", Author: testAuthor()}); err != nil {
				t.Fatal(err)
			}
			if got := readWorktree(t, r, "d/a"); got != "one" {
				t.Errorf("commit to another branch changed d/a to %q", got)
			}
		})
	}
}

func TestWorktreeRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, r *Repo)
		change  Change
	}{
		{"modified file", func(t *testing.T, r *Repo) { writeWorktree(t, r, "tracked", "edited") }, write("tracked", "new")},
		{"modified file deleted", func(t *testing.T, r *Repo) { writeWorktree(t, r, "tracked", "edited") }, del("tracked")},
		{"same size edit", func(t *testing.T, r *Repo) { writeWorktree(t, r, "tracked", "TRACKED") }, write("tracked", "new")},
		{"untracked file", func(t *testing.T, r *Repo) { writeWorktree(t, r, "sigs/signature-2", "mine") }, write("sigs/signature-2", "theirs")},
		{"untracked directory", func(t *testing.T, r *Repo) { writeWorktree(t, r, "new/x", "mine") }, write("new", "file")},
		{"untracked file in the way", func(t *testing.T, r *Repo) { writeWorktree(t, r, "blocker", "mine") }, write("blocker/x", "file")},
	}
	for _, b := range worktreeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := b.open(t)
					base := mustCommit(t, r, plumbing.ZeroHash, "base", write("tracked", "tracked"), write("sigs/signature-1", "1"))
					if err := r.CheckPaths([]string{tt.change.Path}); err != nil {
						t.Fatalf("CheckPaths before the edit: %v", err)
					}
					tt.prepare(t, r)
					if err := r.CheckPaths([]string{tt.change.Path}); !errors.Is(err, ErrDirty) {
						t.Errorf("CheckPaths = %v, want ErrDirty", err)
					}
					_, err := r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{base},
						Changes: []Change{tt.change}, Message: "x", Author: testAuthor()})
					if !errors.Is(err, ErrDirty) {
						t.Errorf("Commit error = %v, want ErrDirty", err)
					}
					if err == nil || !strings.Contains(err.Error(), strings.Split(tt.change.Path, "/")[0]) {
						t.Errorf("error %v does not name the path", err)
					}
					if tip, _ := r.Branch("main"); tip != base {
						t.Errorf("branch moved")
					}
				})
			}
		})
	}
}

func TestCleanNoticesEdits(t *testing.T) {
	t.Parallel()
	for _, b := range worktreeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			mustCommit(t, r, plumbing.ZeroHash, "base", write("a/b", "1"), write("c", "2"))
			if err := r.Clean(); err != nil {
				t.Fatalf("Clean() after commit = %v", err)
			}
			writeWorktree(t, r, "untracked", "ignored")
			if err := r.Clean(); err != nil {
				t.Errorf("Clean() with an untracked file = %v", err)
			}
			writeWorktree(t, r, "a/b", "9")
			if err := r.Clean(); !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "a/b") {
				t.Errorf("Clean() after an edit = %v, want ErrDirty naming a/b", err)
			}
			writeWorktree(t, r, "a/b", "1")
			if err := r.worktree.Remove("c"); err != nil {
				t.Fatal(err)
			}
			if err := r.Clean(); !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "c") {
				t.Errorf("Clean() after deleting c = %v, want ErrDirty naming c", err)
			}
		})
	}
}

func TestInteropWorktreeStagedAndGitIndexLock(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r := diskRepo(t, false)
	var env []string
	base := mustCommit(t, r, plumbing.ZeroHash, "base", write("a", "1"), write("b", "2"))

	// A change staged with git add but reverted in the working tree.
	writeWorktree(t, r, "a", "staged")
	interop.Git(t, r.WorkDir(), env, "add", "a")
	writeWorktree(t, r, "a", "1")
	if err := r.CheckPaths([]string{"a"}); !errors.Is(err, ErrDirty) {
		t.Errorf("CheckPaths(staged) = %v, want ErrDirty", err)
	}
	if err := r.Clean(); !errors.Is(err, ErrDirty) {
		t.Errorf("Clean() with a staged change = %v, want ErrDirty", err)
	}
	if err := r.CheckPaths([]string{"b"}); err != nil {
		t.Errorf("CheckPaths(b) = %v", err)
	}
	interop.Git(t, r.WorkDir(), env, "reset", "-q")

	// While git holds the index lock, a commit fails without moving.
	lock := filepath.Join(r.GitDir(), "index.lock")
	if err := os.WriteFile(lock, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{base},
		Changes: []Change{write("c", "3")}, Message: "c", Author: testAuthor()})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Commit with index.lock = %v, want ErrLocked", err)
	}
	if tip, _ := r.Branch("main"); tip != base {
		t.Errorf("branch moved")
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, r, base, "c", write("c", "3"))
	if out := interop.Git(t, r.WorkDir(), env, "status", "--porcelain"); out != "" {
		t.Errorf("git status:\n%s", out)
	}
}

// TestWorktreeAddsAndReplacesInOneCommit adds many files before, in path
// order, it replaces others: every change must reach the index.
func TestWorktreeAddsAndReplacesInOneCommit(t *testing.T) {
	t.Parallel()
	for _, b := range worktreeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c := mustCommit(t, r, plumbing.ZeroHash, "one", write("m/1", "old"), write("z/1", "old"))
			var changes []Change
			for i := range 150 {
				changes = append(changes, write(fmt.Sprintf("a/%03d", i), "added"))
			}
			changes = append(changes, write("m/1", "new"), write("z/1", "new"), write("m/2", "added"))
			mustCommit(t, r, c, "two", changes...)
			if err := r.Clean(); err != nil {
				t.Errorf("Clean() = %v", err)
			}
			if got := readWorktree(t, r, "z/1"); got != "new" {
				t.Errorf("z/1 = %q", got)
			}
		})
	}
}
