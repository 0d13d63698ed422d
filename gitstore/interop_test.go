package gitstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/testkeys"
)

// These tests drive the real git: what tally writes must be what git would
// write, and what git writes tally must read.

func TestInteropSameHashAsGit(t *testing.T) {
	t.Parallel()
	requireTool(t, "git")
	r := diskRepo(t, false)
	ours := mustCommit(t, r, plumbing.ZeroHash, "first", write("a/b", "x"), write("c", "y"))

	dir := t.TempDir()
	env := gitEnv(t, "GIT_AUTHOR_DATE=1748779200 +0000", "GIT_COMMITTER_DATE=1748779200 +0000")
	runGit(t, dir, env, "init", "-q", "-b", "main")
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o777); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"a/b": "x", "c": "y"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, dir, env, "add", ".")
	runGit(t, dir, env, "commit", "-q", "-m", "first")
	theirs := strings.TrimSpace(runGit(t, dir, env, "rev-parse", "HEAD"))
	if ours.String() != theirs {
		t.Errorf("tally wrote commit %s, git wrote %s", ours, theirs)
	}
}

func TestInteropFsckAndStatusAfterCommits(t *testing.T) {
	t.Parallel()
	requireTool(t, "git")
	r := diskRepo(t, false)
	env := gitEnv(t)
	c := mustCommit(t, r, plumbing.ZeroHash, "one",
		write(sigDir+"/signature-1", "one"), write("builds/2025.06.0/ABCD.txt", "digests\n"), write("top", "t"))
	c = mustCommit(t, r, c, "two",
		write(sigDir+"/signature-2", "two"), write("top", "changed"), write("x/y/z/deep", "d"))
	c = mustCommit(t, r, c, "three", del("x/y/z/deep"), del("builds/2025.06.0/ABCD.txt"), write("x/other", "o"))

	runGit(t, r.WorkDir(), env, "fsck", "--strict", "--no-progress")
	if out := runGit(t, r.WorkDir(), env, "status", "--porcelain", "--untracked-files=all"); out != "" {
		t.Errorf("git status after commits:\n%s", out)
	}
	if got := strings.TrimSpace(runGit(t, r.WorkDir(), env, "rev-parse", "HEAD")); got != c.String() {
		t.Errorf("git sees HEAD %s, want %s", got, c)
	}
	// Emptied directories are gone from the working tree, as with git.
	if _, err := os.Stat(filepath.Join(r.WorkDir(), "x", "y")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("x/y still in the working tree: %v", err)
	}
	if err := r.Clean(); err != nil {
		t.Errorf("Clean() = %v", err)
	}
	// git's reflog records the commits.
	if out := runGit(t, r.WorkDir(), env, "reflog", "--format=%gs", "main"); !strings.HasPrefix(out, "commit: three\n") {
		t.Errorf("reflog:\n%s", out)
	}
}

// gpgHome makes a short-lived GNUPGHOME (short: the agent's socket path has
// a length limit) holding the public key of bob.
func gpgHome(t *testing.T) string {
	t.Helper()
	requireTool(t, "gpg")
	home, err := os.MkdirTemp("/tmp", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if gpgconf, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command(gpgconf, "--kill", "all")
			cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
			_ = cmd.Run()
		}
		_ = os.RemoveAll(home)
	})
	pub := filepath.Join(home, "bob.asc")
	if err := os.WriteFile(pub, testkeys.Public("bob"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gpg", "--batch", "--quiet", "--import", pub)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	return home
}

func TestInteropVerifyCommitAndTag(t *testing.T) {
	t.Parallel()
	requireTool(t, "git")
	env := gitEnv(t, "GNUPGHOME="+gpgHome(t))
	r := diskRepo(t, true)
	c, err := r.Commit(CommitRequest{Branch: "main", Changes: []Change{write("a", "1")},
		Message: "signed\n\nwith a body\n", Author: testAuthor(), Sign: bobSign})
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Signature) == 0 {
		t.Fatal("ReadCommit found no signature")
	}
	runGit(t, r.GitDir(), env, "verify-commit", c.String())

	tag, err := r.CreateTag(TagRequest{Name: "2025.06.0", Target: c, Message: "release 2025.06.0",
		Tagger: testAuthor(), Sign: bobSign})
	if err != nil {
		t.Fatal(err)
	}
	runGit(t, r.GitDir(), env, "verify-tag", "2025.06.0")
	if got := strings.TrimSpace(runGit(t, r.GitDir(), env, "rev-parse", "refs/tags/2025.06.0")); got != tag.String() {
		t.Errorf("git sees tag %s, want %s", got, tag)
	}
	runGit(t, r.GitDir(), env, "fsck", "--strict", "--no-progress")

	// A commit whose signature covers other bytes must fail verification.
	bad := *info
	bad.Message = strings.Replace(bad.Message, "signed", "forged", 1)
	h, err := r.writeObject(plumbing.CommitObject, encodeCommit(&bad, info.Signature))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := gitOutput(r.GitDir(), env, "verify-commit", h.String()); err == nil {
		t.Errorf("git verify-commit accepted a forged commit:\n%s", out)
	}
}
