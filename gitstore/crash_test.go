package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

// crashEnv makes the test binary, run again as a child, make crashCommit in
// the repository named by the variable ("DIR" or "DIR:POINT:N"), killing
// itself with SIGKILL at the Nth fault point named POINT.
const crashEnv = "GITSTORE_TEST_CRASH"

// crashPoints are the write steps of a commit on the checked-out branch, in
// the order they happen.
var crashPoints = []string{
	"pack-written", "objects-written", "lock-taken", "intent-written", "ref-lock-written", "ref-moved",
	"worktree-file-deleted", "worktree-tmp-created", "worktree-file-written", "index-lock-written",
	"index-written", "checkout-done",
}

// crashChild is the child's side of TestCrashAtEveryWriteStep: it prints
// each point reached with its count when no kill is asked for.
func crashChild(spec string) {
	dir, point, n := spec, "", 0
	if i := strings.IndexByte(spec, ':'); i >= 0 {
		dir = spec[:i]
		rest := strings.SplitN(spec[i+1:], ":", 2)
		point = rest[0]
		n, _ = strconv.Atoi(rest[1])
	}
	var count atomic.Int64
	SetFaultHook(func(name string) {
		if name == point && count.Add(1) == int64(n) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		if point == "" {
			fmt.Println(name)
		}
	})
	r, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	r.now = testClock
	if rc, err := r.Recover(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	} else if rc.Changed() {
		fmt.Fprintln(os.Stderr, "recovered:", rc)
	}
	_, tip, err := r.Head()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if tip != crashBase(r) {
		os.Exit(0) // done already
	}
	if _, err := r.Commit(crashCommit(tip)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	os.Exit(0)
}

// crashBase is the commit the crash tests start from: main's first commit.
func crashBase(r *Repo) plumbing.Hash {
	var first plumbing.Hash
	_, tip, _ := r.Head()
	for h := tip; !h.IsZero(); {
		first = h
		c, err := r.ReadCommit(h)
		if err != nil || len(c.Parents) == 0 {
			break
		}
		h = c.Parents[0]
	}
	return first
}

// crashFiles are the base commit's files.
func crashFiles() []Change {
	var ch []Change
	for i := range 60 {
		ch = append(ch, write(fmt.Sprintf("stagex/core-%02d@sha256=%064d/signature-1", i, i), fmt.Sprintf("sig %d", i)))
	}
	return append(ch, write("tally.toml", "namespace = \"stagex\"\n"))
}

// crashCommit deletes 10 files, rewrites 10 and adds 120 in new directories
// (enough to be written as a pack).
func crashCommit(parent plumbing.Hash) CommitRequest {
	var ch []Change
	for i := range 10 {
		ch = append(ch, Change{Path: fmt.Sprintf("stagex/core-%02d@sha256=%064d/signature-1", i, i), Delete: true})
	}
	for i := 10; i < 20; i++ {
		ch = append(ch, write(fmt.Sprintf("stagex/core-%02d@sha256=%064d/signature-1", i, i), fmt.Sprintf("resigned %d", i)))
	}
	for i := range 120 {
		ch = append(ch, write(fmt.Sprintf("stagex/new-%03d@sha256=%064d/signature-1", i, i), fmt.Sprintf("new %d", i)))
	}
	return CommitRequest{Branch: "main", Parents: []plumbing.Hash{parent}, Changes: ch, Message: "crash test", Author: testAuthor()}
}

func runCrashChild(t *testing.T, spec string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+spec)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = interop.Env(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestCrashAtEveryWriteStep kills a commit on the checked-out branch with
// SIGKILL at every occurrence of every write step (a child process each
// time), then checks what the next tally finds: git fsck --strict is clean,
// the branch is at the old or the new commit, Recover leaves the index and
// working tree matching HEAD with no lock or temporary file behind, and a
// rerun of the commit completes the job.
func TestCrashAtEveryWriteStep(t *testing.T) {
	interop.Require(t, "git")
	base := filepath.Join(t.TempDir(), "base")
	r, err := Init(base, false, "")
	if err != nil {
		t.Fatal(err)
	}
	r.now = testClock
	first := mustCommit(t, r, plumbing.ZeroHash, "base", crashFiles()...)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// A clean run: the new commit, and how often each point is reached.
	clean := copyRepo(t, base)
	out, err := runCrashChild(t, clean)
	if err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	counts := map[string]int{}
	for _, l := range strings.Fields(out) {
		counts[l]++
	}
	want := strings.TrimSpace(gitOut(t, clean, "rev-parse", "main"))
	for _, p := range crashPoints {
		if counts[p] == 0 {
			t.Errorf("fault point %s never reached in a clean run (reached: %v)", p, counts)
		}
	}

	kills := 0
	for _, p := range crashPoints {
		ns := []int{1, 2, counts[p] / 2, counts[p]}
		seen := map[int]bool{}
		for _, n := range ns {
			if n < 1 || n > counts[p] || seen[n] {
				continue
			}
			seen[n] = true
			t.Run(fmt.Sprintf("%s-%d", p, n), func(t *testing.T) {
				dir := copyRepo(t, base)
				out, err := runCrashChild(t, fmt.Sprintf("%s:%s:%d", dir, p, n))
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("child was not killed: %v\n%s", err, out)
				}
				kills++
				checkAfterCrash(t, dir, first.String(), want)
			})
		}
	}
	t.Logf("%d kills survived", kills)
}

// checkAfterCrash checks a repository a commit from old to new was killed in.
func checkAfterCrash(t *testing.T, dir, old, new string) {
	t.Helper()
	gitOut(t, dir, "fsck", "--strict", "--no-progress")
	tip := strings.TrimSpace(gitOut(t, dir, "rev-parse", "main"))
	if tip != old && tip != new {
		t.Fatalf("main at %s, neither the old %s nor the new %s", tip, old, new)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.Recover()
	if err != nil {
		t.Fatalf("recovering: %v", err)
	}
	t.Logf("main at the %s commit; %s", map[bool]string{true: "new", false: "old"}[tip == new], rc)
	if err := r.Clean(); err != nil {
		t.Errorf("after Recover: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// git agrees, and nothing of tally's is left in the git directory or the tree.
	if st := gitOut(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after Recover:\n%s", st)
	}
	for _, p := range []string{".git/index.lock", ".git/refs/heads/main.lock", ".git/" + intentFile} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".git", "tally", "locks", "*")); len(left) > 0 {
		t.Errorf("lock records left behind: %v", left)
	}
	// Rerunning finishes the job.
	if out, err := runCrashChild(t, dir); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	if tip := strings.TrimSpace(gitOut(t, dir, "rev-parse", "main")); tip != new {
		t.Errorf("after the rerun main is at %s, want %s", tip, new)
	}
	if st := gitOut(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after the rerun:\n%s", st)
	}
}

// copyRepo copies a repository directory with cp -a.
func copyRepo(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

// TestRecoverLeavesLiveLocks checks that Recover never removes a lock a
// running process holds, nor one git took, nor a checkout another process
// is updating.
func TestRecoverLeavesLiveLocks(t *testing.T) {
	t.Parallel()
	r := diskRepo(t, false)
	first := mustCommit(t, r, plumbing.ZeroHash, "base", write("a", "1"))
	// git's own lock: no record of tally's.
	gitLock := filepath.Join(r.GitDir(), "index.lock")
	if err := os.WriteFile(gitLock, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := r.writeIntent(checkoutIntent{branch: "refs/heads/main", old: first, new: first}); err != nil {
		t.Fatal(err)
	}
	rc, err := r.Recover()
	if err != nil || rc.Changed() {
		t.Fatalf("Recover with git's index.lock: %v, %v", rc, err)
	}
	if _, err := os.Stat(gitLock); err != nil {
		t.Fatalf("git's index.lock removed: %v", err)
	}
	if err := os.Remove(gitLock); err != nil {
		t.Fatal(err)
	}
	// A lock this process holds.
	l, err := r.takeLock(filepath.Join(r.GitDir(), "refs", "heads", "main.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, err = r.Recover()
	if err != nil || len(rc.Locks) > 0 {
		t.Fatalf("Recover with a live lock: %v, %v", rc, err)
	}
	if _, err := os.Stat(l.path); err != nil {
		t.Fatalf("live lock removed: %v", err)
	}
	l.release()
	// The intent (of a move that did nothing) is cleared without changes.
	rc, err = r.Recover()
	if err != nil || rc.Changed() {
		t.Fatalf("Recover: %v, %v", rc, err)
	}
	if _, found, _ := r.readIntent(); found {
		t.Fatal("intent record left")
	}
}

// TestRecoverKeepsUncommittedWork checks that a file someone edited during
// an interrupted checkout update is kept and shows as modified.
func TestRecoverKeepsUncommittedWork(t *testing.T) {
	t.Parallel()
	r := diskRepo(t, false)
	first := mustCommit(t, r, plumbing.ZeroHash, "base", write("a", "1"), write("b", "1"))
	// The branch moves without the checkout, as if killed right after.
	second, err := r.WriteCommit(CommitRequest{Parents: []plumbing.Hash{first}, Changes: []Change{write("a", "2"), write("b", "2")}, Message: "two", Author: testAuthor()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.writeIntent(checkoutIntent{branch: "refs/heads/main", old: first, new: second}); err != nil {
		t.Fatal(err)
	}
	if err := r.updateRef(refUpdate{name: "refs/heads/main", old: first, new: second}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.WorkDir(), "b"), []byte("my edit"), 0o666); err != nil {
		t.Fatal(err)
	}
	rc, err := r.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Updated != 1 || rc.Kept != 1 || !rc.Moved {
		t.Errorf("Recover = %+v, want 1 updated, 1 kept", rc)
	}
	if got, _ := os.ReadFile(filepath.Join(r.WorkDir(), "a")); string(got) != "2" {
		t.Errorf("a = %q, want 2", got)
	}
	if got, _ := os.ReadFile(filepath.Join(r.WorkDir(), "b")); string(got) != "my edit" {
		t.Errorf("b = %q, want the edit kept", got)
	}
	if err := r.Clean(); !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "b:") {
		t.Errorf("Clean = %v, want b modified", err)
	}
}

// TestCommitInterruptedBeforeBranchMoves checks that a done context stops
// a commit before the branch moves, with nothing changed on disk.
func TestCommitInterruptedBeforeBranchMoves(t *testing.T) {
	t.Parallel()
	r := diskRepo(t, false)
	first := mustCommit(t, r, plumbing.ZeroHash, "base", write("a", "1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := CommitRequest{Branch: "main", Parents: []plumbing.Hash{first}, Changes: []Change{write("a", "2")}, Message: "m", Author: testAuthor(), Context: ctx}
	if _, err := r.Commit(req); !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v, want ErrInterrupted", err)
	}
	if _, tip, _ := r.Head(); tip != first {
		t.Errorf("branch moved to %s", tip)
	}
	if err := r.Clean(); err != nil {
		t.Error(err)
	}
	if _, found, _ := r.readIntent(); found {
		t.Error("intent record left")
	}
	if err := r.SetBranch(BranchUpdate{Branch: "main", Old: first, New: first, Context: ctx}); !errors.Is(err, ErrInterrupted) {
		t.Errorf("SetBranch = %v, want ErrInterrupted", err)
	}
}

// TestMemoryCommitWritesNoIntent checks that a repository in memory leaves
// nothing on disk: no intent record in the current directory.
func TestMemoryCommitWritesNoIntent(t *testing.T) {
	r := memRepo(true)
	mustCommit(t, r, plumbing.ZeroHash, "one", write("a", "1"))
	if _, err := os.Stat(filepath.FromSlash(intentFile)); err == nil {
		t.Fatalf("%s written into the current directory", intentFile)
	}
	if _, err := os.Stat("tally"); err == nil {
		t.Fatal("a tally directory was created in the current directory")
	}
}
