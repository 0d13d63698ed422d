package gitstore

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/internal/interop"
)

func TestOpenRefusesWhatIsNotARepository(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	badDotGit := filepath.Join(dir, "baddotgit")
	if err := os.MkdirAll(badDotGit, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badDotGit, ".git"), []byte("not a gitdir line\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.MkdirAll(dangling, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dangling, ".git"), []byte("gitdir: ../nowhere\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	wt := diskRepo(t, false)
	for name, path := range map[string]string{
		"empty directory":              t.TempDir(),
		"missing":                      filepath.Join(dir, "missing"),
		"file":                         file,
		"bad .git file":                badDotGit,
		"dangling .git file":           dangling,
		"git dir of a working tree":    wt.GitDir(),
		"subdirectory of a repository": mkdir(t, filepath.Join(wt.WorkDir(), "sub")),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Open(path)
			if !errors.Is(err, ErrNotRepository) {
				t.Errorf("Open = %v, want ErrNotRepository", err)
			}
			if r != nil {
				t.Errorf("Open returned a Repo with an error")
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInitAndOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := Init(dir, false, "release/2025.06.0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Bare() || r.WorkDir() != dir || r.GitDir() != filepath.Join(dir, ".git") {
		t.Errorf("Bare %v, WorkDir %q, GitDir %q", r.Bare(), r.WorkDir(), r.GitDir())
	}
	branch, tip, err := r.Head()
	if err != nil || branch != "refs/heads/release/2025.06.0" || !tip.IsZero() {
		t.Errorf("Head() = %q, %s, %v", branch, tip, err)
	}
	if _, err := Init(dir, false, ""); err == nil {
		t.Error("Init over an existing repository succeeded")
	}
	if _, err := Init(t.TempDir(), true, "bad..name"); err == nil {
		t.Error("Init with a bad branch name succeeded")
	}
	bare := diskRepo(t, true)
	if !bare.Bare() || bare.WorkDir() != "" {
		t.Errorf("bare: Bare %v, WorkDir %q", bare.Bare(), bare.WorkDir())
	}
	if _, err := r.Branch("main"); !errors.Is(err, plumbing.ErrReferenceNotFound) {
		t.Errorf("Branch(missing) = %v, want plumbing.ErrReferenceNotFound", err)
	}
}

// TestInteropRepositoryMadeByGit opens what git made: packed objects and
// packed refs, an index with git's extensions, a linked working tree.
func TestInteropRepositoryMadeByGit(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	dir := t.TempDir()
	var env []string
	interop.Git(t, dir, env, "init", "-q", "-b", "main")
	for i, p := range []string{"stagex/a/signature-1", "stagex/b/signature-1", "tally.toml"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte{byte('a' + i)}, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	interop.Git(t, dir, env, "add", ".")
	interop.Git(t, dir, env, "commit", "-q", "-m", "by git")
	interop.Git(t, dir, env, "tag", "-a", "-m", "v", "2025.06.0")
	interop.Git(t, dir, env, "gc", "-q")
	if _, err := os.Stat(filepath.Join(dir, ".git", "refs", "heads", "main")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("git gc left a loose ref: %v", err)
	}
	head := strings.TrimSpace(interop.Git(t, dir, env, "rev-parse", "HEAD"))

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.ResolveRevision("2025.06.0"); err != nil || got.String() != head {
		t.Errorf("ResolveRevision(tag) = %s, %v; want %s", got, err, head)
	}
	if got, err := r.ResolveRevision("HEAD"); err != nil || got.String() != head {
		t.Errorf("ResolveRevision(HEAD) = %s, %v", got, err)
	}
	s, err := r.Snapshot(plumbing.NewHash(head))
	if err != nil {
		t.Fatal(err)
	}
	if data, err := s.ReadFile("stagex/b/signature-1"); err != nil || string(data) != "b" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	// main lives only in packed-refs: the compare-and-swap must read it.
	c := mustCommit(t, r, plumbing.NewHash(head), "by tally", write("stagex/a/signature-2", "x"))
	if out := interop.Git(t, dir, env, "status", "--porcelain"); out != "" {
		t.Errorf("git status after committing over git's index:\n%s", out)
	}
	interop.Git(t, dir, env, "fsck", "--strict", "--no-progress")

	// A linked working tree on another branch shares objects and refs.
	linked := filepath.Join(t.TempDir(), "linked")
	interop.Git(t, dir, env, "worktree", "add", "-q", "-b", "side", linked)
	lr, err := Open(linked)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	if branch, tip, err := lr.Head(); err != nil || branch != "refs/heads/side" || tip != c {
		t.Errorf("linked Head() = %q, %s, %v; want side at %s", branch, tip, err, c)
	}
	if lr.WorkDir() != linked || lr.GitDir() == r.GitDir() {
		t.Errorf("linked WorkDir %q GitDir %q", lr.WorkDir(), lr.GitDir())
	}
	side, err := lr.Commit(CommitRequest{Branch: "side", Parents: []plumbing.Hash{c},
		Changes: []Change{write("stagex/b/signature-2", "y")}, Message: "side", Author: testAuthor()})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(linked, "stagex", "b", "signature-2")); err != nil || string(data) != "y" {
		t.Errorf("linked working tree file = %q, %v", data, err)
	}
	if out := interop.Git(t, linked, env, "status", "--porcelain"); out != "" {
		t.Errorf("git status in the linked working tree:\n%s", out)
	}
	if out := interop.Git(t, dir, env, "status", "--porcelain"); out != "" {
		t.Errorf("git status in the main working tree:\n%s", out)
	}
	if got, err := r.Branch("side"); err != nil || got != side {
		t.Errorf("main repository sees side at %s, %v; want %s", got, err, side)
	}
	// Neither moves the branch checked out in the other.
	if _, err := r.Commit(CommitRequest{Branch: "side", Parents: []plumbing.Hash{side},
		Changes: []Change{write("x", "x")}, Message: "x", Author: testAuthor()}); err == nil || !strings.Contains(err.Error(), linked) {
		t.Errorf("committing to side from the main working tree = %v, want a refusal naming %s", err, linked)
	}
	if _, err := lr.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{c},
		Changes: []Change{write("x", "x")}, Message: "x", Author: testAuthor()}); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("committing to main from the linked working tree = %v, want a refusal naming %s", err, dir)
	}
	interop.Git(t, dir, env, "fsck", "--strict", "--no-progress")
}

func TestLock(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			unlock, err := r.Lock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := r.Lock(ctx); !errors.Is(err, ErrLocked) {
				t.Errorf("second Lock = %v, want ErrLocked", err)
			}
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
			if err := unlock(); err != nil {
				t.Errorf("second unlock: %v", err)
			}
			// A waiting Lock gets the lock once it is released.
			unlock, err = r.Lock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() {
				u, err := r.Lock(context.Background())
				if err == nil {
					err = u()
				}
				got <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Errorf("waiting Lock = %v", err)
			}
		})
	}
}

// holdLockEnv makes the test binary, run again as a child, hold the lock
// of a repository until it is killed.
const holdLockEnv = "GITSTORE_TEST_HOLD_LOCK"

// holdLock is the child's side of TestLockReleasedWhenProcessDies.
func holdLock(dir string) {
	r, err := Open(dir)
	if err != nil {
		panic(err)
	}
	if _, err := r.Lock(context.Background()); err != nil {
		panic(err)
	}
	os.Stdout.WriteString("locked\n")
	select {}
}

func TestLockReleasedWhenProcessDies(t *testing.T) {
	t.Parallel()
	r := diskRepo(t, true)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+r.GitDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock while another process holds it = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock, err := r.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock after the holder died = %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestCreateTag(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c := mustCommit(t, r, plumbing.ZeroHash, "one", write("a", "1"))
			tag, err := r.CreateTag(TagRequest{Name: "2025.06.0", Target: c, Message: "release", Tagger: testAuthor()})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.reference("refs/tags/2025.06.0"); err != nil || got != tag {
				t.Errorf("refs/tags/2025.06.0 = %s, %v; want %s", got, err, tag)
			}
			if got, err := r.ResolveRevision("2025.06.0"); err != nil || got != c {
				t.Errorf("ResolveRevision(tag) = %s, %v; want the commit %s", got, err, c)
			}
			c2 := mustCommit(t, r, c, "two", write("b", "2"))
			_, err = r.CreateTag(TagRequest{Name: "2025.06.0", Target: c2, Message: "moved", Tagger: testAuthor()})
			if !errors.Is(err, ErrTagExists) {
				t.Errorf("moving a tag = %v, want ErrTagExists", err)
			}
			for _, name := range []string{"", "refs/tags/x", "a..b", "-x", "x.lock", "a b", "x~1"} {
				if _, err := r.CreateTag(TagRequest{Name: name, Target: c, Tagger: testAuthor()}); err == nil {
					t.Errorf("CreateTag(%q) succeeded", name)
				}
			}
			if _, err := r.CreateTag(TagRequest{Name: "evil", Target: c, Tagger: testAuthor(),
				Message: "x\n-----BEGIN PGP SIGNATURE-----\nfake\n"}); err == nil {
				t.Error("CreateTag accepted a message with an armor header line")
			}
			if _, err := r.CreateTag(TagRequest{Name: "missing", Target: plumbing.NewHash("0123456789abcdef0123456789abcdef01234567"), Tagger: testAuthor()}); err == nil {
				t.Error("CreateTag accepted a missing target")
			}
		})
	}
}

func TestCommitRequestChecks(t *testing.T) {
	t.Parallel()
	r := memRepo(false)
	base := mustCommit(t, r, plumbing.ZeroHash, "base", write("a", "1"))
	badSign := func([]byte) ([]byte, error) { return []byte("not armor"), nil }
	failSign := func([]byte) ([]byte, error) { return nil, errors.New("card removed") }
	tests := []struct {
		name string
		req  CommitRequest
	}{
		{"bad branch", CommitRequest{Branch: "a..b", Parents: []plumbing.Hash{base}}},
		{"not a branch", CommitRequest{Branch: "refs/tags/x", Parents: []plumbing.Hash{base}}},
		{"missing parent", CommitRequest{Branch: "main", Parents: []plumbing.Hash{plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")}}},
		{"zero second parent", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base, plumbing.ZeroHash}}},
		{"no author", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Author: testAuthorNamed("")}},
		{"angle bracket", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Author: testAuthorNamed("Eve <evil@example.org>")}},
		{"newline", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Author: testAuthorNamed("Eve\ncommitter x")}},
		{"NUL in message", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Message: "a\x00b"}},
		{"signer returns garbage", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Sign: badSign}},
		{"signer fails", CommitRequest{Branch: "main", Parents: []plumbing.Hash{base}, Sign: failSign}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Author.Name == "" && tt.name != "no author" {
				tt.req.Author = testAuthor()
			}
			if tt.req.Changes == nil {
				tt.req.Changes = []Change{write("b", "2")}
			}
			if _, err := r.Commit(tt.req); err == nil {
				t.Error("Commit succeeded")
			}
			if tip, _ := r.Branch("main"); tip != base {
				t.Errorf("branch moved")
			}
		})
	}
}

func testAuthorNamed(name string) (s object.Signature) {
	s = testAuthor()
	s.Name = name
	return s
}
