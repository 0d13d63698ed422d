package gitstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestWriteCommitMovesNothing(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c1 := mustCommit(t, r, plumbing.ZeroHash, "one", write("a/signature-1", "x"))
			h, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{c1}, Changes: []Change{write("a/signature-2", "y")},
				Message: "two", Author: testAuthor(), Sign: bobSign})
			if err != nil {
				t.Fatal(err)
			}
			if tip, _ := r.Branch("main"); tip != c1 {
				t.Errorf("main moved to %s", tip)
			}
			info, err := r.ReadCommit(h)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Parents) != 1 || info.Parents[0] != c1 || len(info.Signature) == 0 {
				t.Errorf("commit parents %v, signed %v", info.Parents, len(info.Signature) > 0)
			}
			s, _ := r.Snapshot(h)
			if data, err := s.ReadFile("a/signature-2"); err != nil || string(data) != "y" {
				t.Errorf("a/signature-2 = %q, %v", data, err)
			}
			if _, err := r.WriteCommit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{c1}, Author: testAuthor()}); err == nil {
				t.Error("WriteCommit accepted a branch")
			}
		})
	}
}

func TestSetBranch(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c1 := mustCommit(t, r, plumbing.ZeroHash, "one", write("a/signature-1", "x"), write("b/signature-1", "b"))
			c2 := mustCommit(t, r, c1, "two", write("a/signature-2", "y"))
			// A commit that is not a descendant of c2: replayed elsewhere.
			other, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{c1},
				Changes: []Change{write("a/signature-2", "z"), write("c/signature-1", "c"), del("b/signature-1")},
				Message: "other", Author: testAuthor()})
			if err != nil {
				t.Fatal(err)
			}

			// Creating a branch, and refusing to create one that exists.
			if err := r.SetBranch(BranchUpdate{Branch: "side", New: c1}); err != nil {
				t.Fatal(err)
			}
			if tip, _ := r.Branch("side"); tip != c1 {
				t.Errorf("side = %s, want %s", tip, c1)
			}
			if err := r.SetBranch(BranchUpdate{Branch: "side", New: c2}); !errors.Is(err, ErrRaced) {
				t.Errorf("creating an existing branch: %v, want ErrRaced", err)
			}
			// A stale expectation moves nothing.
			if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c1, New: other}); !errors.Is(err, ErrRaced) {
				t.Errorf("stale old: %v, want ErrRaced", err)
			}
			if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c2, New: plumbing.NewHash(strings.Repeat("ab", 20))}); err == nil {
				t.Error("moved to a missing commit")
			}

			// The checked-out branch moves sideways; the working tree follows.
			if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c2, New: other, Why: "sync: replayed"}); err != nil {
				t.Fatal(err)
			}
			if tip, _ := r.Branch("main"); tip != other {
				t.Errorf("main = %s, want %s", tip, other)
			}
			if b.worktree {
				if err := r.Clean(); err != nil {
					t.Errorf("working tree not clean after the move: %v", err)
				}
				readWT := func(p string) (string, error) {
					f, err := r.worktree.Open(p)
					if err != nil {
						return "", err
					}
					defer f.Close()
					var buf [16]byte
					n, _ := f.Read(buf[:])
					return string(buf[:n]), nil
				}
				if got, err := readWT("a/signature-2"); err != nil || got != "z" {
					t.Errorf("a/signature-2 in the working tree = %q, %v", got, err)
				}
				if _, err := readWT("b/signature-1"); err == nil {
					t.Error("b/signature-1 still in the working tree")
				}
			}
		})
	}
}

func TestSetBranchRefusesDirtyWorktree(t *testing.T) {
	t.Parallel()
	r := diskRepo(t, false)
	c1 := mustCommit(t, r, plumbing.ZeroHash, "one", write("a/signature-1", "x"))
	next, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{c1}, Changes: []Change{write("a/signature-2", "y")},
		Message: "two", Author: testAuthor()})
	if err != nil {
		t.Fatal(err)
	}
	// An untracked file where the move would write.
	if err := os.WriteFile(filepath.Join(r.WorkDir(), "a", "signature-2"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c1, New: next}); !errors.Is(err, ErrDirty) {
		t.Fatalf("move over an untracked file: %v, want ErrDirty", err)
	}
	if tip, _ := r.Branch("main"); tip != c1 {
		t.Errorf("main moved to %s although the move was refused", tip)
	}
	if data, _ := os.ReadFile(filepath.Join(r.WorkDir(), "a", "signature-2")); string(data) != "mine" {
		t.Errorf("untracked file overwritten: %q", data)
	}
}

func TestInteropSetBranchGitStatusClean(t *testing.T) {
	t.Parallel()
	requireTool(t, "git")
	r := diskRepo(t, false)
	c1 := mustCommit(t, r, plumbing.ZeroHash, "one", write("a/signature-1", "x"), write("b/signature-1", "b"))
	next, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{c1},
		Changes: []Change{write("a/signature-2", "y"), del("b/signature-1")}, Message: "two", Author: testAuthor(), Sign: bobSign})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c1, New: next}); err != nil {
		t.Fatal(err)
	}
	env := gitEnv(t)
	if out := runGit(t, r.WorkDir(), env, "status", "--porcelain"); out != "" {
		t.Errorf("git status after SetBranch:\n%s", out)
	}
	runGit(t, r.WorkDir(), env, "fsck", "--strict")
	if got := strings.TrimSpace(runGit(t, r.WorkDir(), env, "rev-parse", "HEAD")); got != next.String() {
		t.Errorf("HEAD = %s, want %s", got, next)
	}
}

// TestSetBranchAddsBeforeReplacing moves a branch where, in path order, a
// file is added before another is replaced: both must reach the index.
func TestSetBranchAddsBeforeReplacing(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		if !b.worktree {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			var files []Change
			for i := range 40 {
				files = append(files, write(fmt.Sprintf("d%02d/signature-1", i), "old"))
			}
			c1 := mustCommit(t, r, plumbing.ZeroHash, "one", files...)
			// Many additions first, so that the index grows past its capacity
			// before the replacements come.
			var changes []Change
			for i := range 100 {
				changes = append(changes, write(fmt.Sprintf("a%03d/signature-1", i), "added"))
			}
			changes = append(changes, write("d01/signature-1", "replaced"), write("d20/signature-2", "added"), write("d39/signature-1", "replaced"))
			next, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{c1}, Author: testAuthor(), Message: "two", Changes: changes})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.SetBranch(BranchUpdate{Branch: "main", Old: c1, New: next}); err != nil {
				t.Fatal(err)
			}
			if err := r.Clean(); err != nil {
				t.Errorf("after the move: %v", err)
			}
		})
	}
}
