package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
)

// These tests drive the real git: what tally writes must be what git would
// write, and what git writes tally must read.

func TestInteropSameHashAsGit(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r := diskRepo(t, false)
	ours := mustCommit(t, r, plumbing.ZeroHash, "first", write("a/b", "x"), write("c", "y"))

	dir := t.TempDir()
	env := []string{
		"GIT_AUTHOR_NAME=Tally Test", "GIT_AUTHOR_EMAIL=test@example.org", "GIT_AUTHOR_DATE=1748779200 +0000",
		"GIT_COMMITTER_NAME=Tally Test", "GIT_COMMITTER_EMAIL=test@example.org", "GIT_COMMITTER_DATE=1748779200 +0000",
	}
	interop.Git(t, dir, env, "init", "-q", "-b", "main")
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o777); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"a/b": "x", "c": "y"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	interop.Git(t, dir, env, "add", ".")
	interop.Git(t, dir, env, "commit", "-q", "-m", "first")
	theirs := strings.TrimSpace(interop.Git(t, dir, env, "rev-parse", "HEAD"))
	if ours.String() != theirs {
		t.Errorf("tally wrote commit %s, git wrote %s", ours, theirs)
	}
}

func TestInteropFsckAndStatusAfterCommits(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r := diskRepo(t, false)
	var env []string
	c := mustCommit(t, r, plumbing.ZeroHash, "one",
		write(sigDir+"/signature-1", "one"), write("builds/2025.06.0/ABCD.txt", "digests\n"), write("top", "t"))
	c = mustCommit(t, r, c, "two",
		write(sigDir+"/signature-2", "two"), write("top", "changed"), write("x/y/z/deep", "d"))
	c = mustCommit(t, r, c, "three", del("x/y/z/deep"), del("builds/2025.06.0/ABCD.txt"), write("x/other", "o"))

	interop.Git(t, r.WorkDir(), env, "fsck", "--strict", "--no-progress")
	if out := interop.Git(t, r.WorkDir(), env, "status", "--porcelain", "--untracked-files=all"); out != "" {
		t.Errorf("git status after commits:\n%s", out)
	}
	if got := strings.TrimSpace(interop.Git(t, r.WorkDir(), env, "rev-parse", "HEAD")); got != c.String() {
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
	if out := interop.Git(t, r.WorkDir(), env, "reflog", "--format=%gs", "main"); !strings.HasPrefix(out, "commit: three\n") {
		t.Errorf("reflog:\n%s", out)
	}
}

func TestInteropVerifyCommitAndTag(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	env := []string{"GNUPGHOME=" + interop.GPGHome(t, testkeys.Public("bob"))}
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
	interop.Git(t, r.GitDir(), env, "verify-commit", c.String())

	tag, err := r.CreateTag(TagRequest{Name: "2025.06.0", Target: c, Message: "release 2025.06.0",
		Tagger: testAuthor(), Sign: bobSign})
	if err != nil {
		t.Fatal(err)
	}
	interop.Git(t, r.GitDir(), env, "verify-tag", "2025.06.0")
	if got := strings.TrimSpace(interop.Git(t, r.GitDir(), env, "rev-parse", "refs/tags/2025.06.0")); got != tag.String() {
		t.Errorf("git sees tag %s, want %s", got, tag)
	}
	interop.Git(t, r.GitDir(), env, "fsck", "--strict", "--no-progress")

	// A commit whose signature covers other bytes must fail verification.
	bad := *info
	bad.Message = strings.Replace(bad.Message, "signed", "forged", 1)
	h, err := r.writeObject(plumbing.CommitObject, encodeCommit(&bad, info.Signature))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := interop.GitErr(t, r.GitDir(), env, "verify-commit", h.String()); err == nil {
		t.Errorf("git verify-commit accepted a forged commit:\n%s", out)
	}
}
