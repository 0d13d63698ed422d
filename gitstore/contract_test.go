package gitstore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/google/go-cmp/cmp"
)

// The contract tests run the same checks against every backend.

const sigDir = "stagex/core-gcc@sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestContractFirstCommitAndRead(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			branch, tip, err := r.Head()
			if err != nil || branch != "refs/heads/main" || !tip.IsZero() {
				t.Fatalf("Head() of a new repository = %q, %s, %v; want refs/heads/main, zero, nil", branch, tip, err)
			}
			if got := r.Bare(); got != !b.worktree {
				t.Errorf("Bare() = %v, want %v", got, !b.worktree)
			}
			h := mustCommit(t, r, plumbing.ZeroHash, "first",
				write(sigDir+"/signature-1", "sig one"),
				write(sigDir+"/signature-2", "sig two"),
				write("tally.toml", "threshold = 2\n"),
			)
			if _, tip, _ := r.Head(); tip != h {
				t.Errorf("Head() tip = %s, want %s", tip, h)
			}
			if got, err := r.Branch("main"); err != nil || got != h {
				t.Errorf("Branch(main) = %s, %v; want %s", got, err, h)
			}
			s, err := r.Snapshot(h)
			if err != nil {
				t.Fatal(err)
			}
			data, err := s.ReadFile(sigDir + "/signature-2")
			if err != nil || string(data) != "sig two" {
				t.Errorf("ReadFile = %q, %v; want %q", data, err, "sig two")
			}
			if _, err := s.ReadFile(sigDir + "/signature-3"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile(missing) error = %v, want fs.ErrNotExist", err)
			}
			if _, err := s.ReadFile("stagex"); err == nil {
				t.Error("ReadFile(directory) succeeded")
			}
			list, err := s.List("")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range list {
				names = append(names, e.Name)
			}
			if diff := cmp.Diff([]string{"stagex", "tally.toml"}, names); diff != "" {
				t.Errorf("List(\"\") names (-want +got):\n%s", diff)
			}
			var walked []string
			err = s.Walk("", func(p string, e Entry) error {
				walked = append(walked, p+" "+modeName(e.Mode))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"stagex directory",
				sigDir + " directory",
				sigDir + "/signature-1 file",
				sigDir + "/signature-2 file",
				"tally.toml file",
			}
			if diff := cmp.Diff(want, walked); diff != "" {
				t.Errorf("Walk (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContractHashesAreStable(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]plumbing.Hash{}
	for _, b := range backends() {
		r := b.open(t)
		h := mustCommit(t, r, plumbing.ZeroHash, "first", write("a/b", "x"), write("c", "y"))
		mu.Lock()
		got[b.name] = h
		mu.Unlock()
	}
	// The value is checked against real git in TestInteropSameHashAsGit.
	want := got["memory"]
	for name, h := range got {
		if h != want {
			t.Errorf("%s: commit %s, memory gave %s", name, h, want)
		}
	}
}

func TestContractChangesRewriteOnlyChangedTrees(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c1 := mustCommit(t, r, plumbing.ZeroHash, "one",
				write("x/a/1", "1"), write("x/b/1", "1"), write("y/1", "1"), write("y/2", "2"))
			c2 := mustCommit(t, r, c1, "two",
				write("x/a/2", "2"), del("y/1"), del("y/2"), write("x/a/1", "one"))
			s1, _ := r.Snapshot(c1)
			s2, err := r.Snapshot(c2)
			if err != nil {
				t.Fatal(err)
			}
			e1, _ := s1.Stat("x/b")
			e2, _ := s2.Stat("x/b")
			if e1.Hash != e2.Hash {
				t.Errorf("unchanged tree x/b changed: %s -> %s", e1.Hash, e2.Hash)
			}
			if _, err := s2.Stat("y"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("emptied directory y still there: %v", err)
			}
			data, err := s2.ReadFile("x/a/1")
			if err != nil || string(data) != "one" {
				t.Errorf("ReadFile(x/a/1) = %q, %v", data, err)
			}
			info, err := r.ReadCommit(c2)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]plumbing.Hash{c1}, info.Parents); diff != "" {
				t.Errorf("parents (-want +got):\n%s", diff)
			}
			if info.Message != "two\n" {
				t.Errorf("message %q, want %q", info.Message, "two\n")
			}
		})
	}
}

func TestContractRaced(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c1 := mustCommit(t, r, plumbing.ZeroHash, "one", write("a", "1"))
			c2 := mustCommit(t, r, c1, "two", write("b", "2"))
			// A writer that still believes c1 is the tip.
			_, err := r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{c1},
				Changes: []Change{write("c", "3")}, Message: "stale", Author: testAuthor()})
			if !errors.Is(err, ErrRaced) {
				t.Fatalf("stale commit error = %v, want ErrRaced", err)
			}
			// And one that believes the branch does not exist yet.
			_, err = r.Commit(CommitRequest{Branch: "main",
				Changes: []Change{write("c", "3")}, Message: "stale", Author: testAuthor()})
			if !errors.Is(err, ErrRaced) {
				t.Fatalf("stale first commit error = %v, want ErrRaced", err)
			}
			if tip, _ := r.Branch("main"); tip != c2 {
				t.Errorf("branch moved to %s, want %s", tip, c2)
			}
		})
	}
}

func TestContractConcurrentCommits(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			base := mustCommit(t, r, plumbing.ZeroHash, "base", write("base", "0"))
			const writers = 4
			hashes := make([]plumbing.Hash, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					hashes[i], errs[i] = r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{base},
						Changes: []Change{write(strings.Repeat("w", i+1), "data")}, Message: "writer", Author: testAuthor()})
				})
			}
			wg.Wait()
			var winner plumbing.Hash
			for i, err := range errs {
				switch {
				case err == nil && winner.IsZero():
					winner = hashes[i]
				case err == nil:
					t.Errorf("writer %d also won", i)
				case !errors.Is(err, ErrRaced):
					t.Errorf("writer %d: %v, want ErrRaced", i, err)
				}
			}
			if tip, _ := r.Branch("main"); tip != winner || winner.IsZero() {
				t.Fatalf("tip %s, winner %s", tip, winner)
			}
			// The winner's objects are all readable.
			s, err := r.Snapshot(winner)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			if err := s.Walk("", func(p string, e Entry) error {
				n++
				_, err := s.Blob(e.Hash)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("winner has %d files, want 2", n)
			}
		})
	}
}

func TestContractRefusesBadChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		changes []Change
		want    error
	}{
		{"empty path", []Change{write("", "x")}, ErrUnsafePath},
		{"absolute", []Change{write("/etc/passwd", "x")}, ErrUnsafePath},
		{"dot dot", []Change{write("a/../b", "x")}, ErrUnsafePath},
		{"dot", []Change{write("a/./b", "x")}, ErrUnsafePath},
		{"empty component", []Change{write("a//b", "x")}, ErrUnsafePath},
		{"trailing slash", []Change{write("a/", "x")}, ErrUnsafePath},
		{"dot git", []Change{write(".git/config", "x")}, ErrUnsafePath},
		{"dot git upper", []Change{write("a/.GIT/hooks", "x")}, ErrUnsafePath},
		{"backslash", []Change{write(`a\b`, "x")}, ErrUnsafePath},
		{"newline", []Change{write("a\nb", "x")}, ErrUnsafePath},
		{"twice", []Change{write("a", "x"), write("a", "y")}, ErrUnsafePath},
		{"file and dir", []Change{write("a", "x"), write("a-b", "y"), write("a/b", "y")}, ErrUnsafePath},
		{"over existing file", []Change{write("f/x", "x")}, ErrUnsafePath},
		{"over existing dir", []Change{write("d", "x")}, ErrUnsafePath},
		{"delete missing", []Change{del("nope")}, fs.ErrNotExist},
		{"delete dir", []Change{del("d")}, ErrUnsafePath},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			base := mustCommit(t, r, plumbing.ZeroHash, "base", write("f", "file"), write("d/x", "in dir"))
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{base},
						Changes: tt.changes, Message: "bad", Author: testAuthor()})
					if !errors.Is(err, tt.want) {
						t.Errorf("error = %v, want %v", err, tt.want)
					}
					if tip, _ := r.Branch("main"); tip != base {
						t.Errorf("branch moved to %s", tip)
					}
				})
			}
		})
	}
}

func TestSnapshotOfZeroIsEmpty(t *testing.T) {
	t.Parallel()
	r := memRepo(false)
	s, err := r.Snapshot(plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List("")
	if err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; want empty", list, err)
	}
	if _, err := s.ReadFile("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile error = %v, want fs.ErrNotExist", err)
	}
	e, err := s.Stat("")
	if err != nil || e.Mode != filemode.Dir {
		t.Errorf("Stat(root) = %+v, %v", e, err)
	}
}

// TestContractReadWhileWriting reads snapshots on several goroutines while
// commits (big enough to be written as packs on disk) land: run with -race.
func TestContractReadWhileWriting(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			tip := mustCommit(t, r, plumbing.ZeroHash, "base", write("base/signature-1", "base"))
			done := make(chan struct{})
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						_, head, err := r.Head()
						if err != nil {
							t.Error(err)
							return
						}
						s, err := r.Snapshot(head)
						if err != nil {
							t.Error(err)
							return
						}
						if err := s.Walk("", func(p string, e Entry) error {
							if e.IsDir() {
								return nil
							}
							_, err := s.ReadFile(p)
							return err
						}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			for i := range 4 {
				var changes []Change
				for j := range packThreshold {
					changes = append(changes, write(fmt.Sprintf("c%d/%03d/signature-1", i, j), fmt.Sprint(i, j)))
				}
				tip = mustCommit(t, r, tip, fmt.Sprint("commit ", i), changes...)
			}
			close(done)
			wg.Wait()
		})
	}
}
