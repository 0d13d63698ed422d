package gitstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

func TestInteropPushFetch(t *testing.T) {
	t.Parallel()
	// go-git reaches local remotes through git-upload-pack and
	// git-receive-pack.
	interop.Require(t, "git")
	ctx := context.Background()
	kinds := []struct {
		name string
		url  func(dir string) string
	}{
		{"path", func(dir string) string { return dir }},
		{"file URL", func(dir string) string { return "file://" + dir }},
		// A relative path is relative to the repository, as git reads it,
		// not to the process's working directory.
		{"relative path", func(dir string) string { return "" }},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			remote := diskRepo(t, true)
			url := kind.url(remote.GitDir())
			alice := diskRepo(t, false)
			bob := diskRepo(t, false)
			for _, r := range []*Repo{alice, bob} {
				u := url
				if u == "" {
					rel, err := filepath.Rel(r.WorkDir(), remote.GitDir())
					if err != nil {
						t.Fatal(err)
					}
					u = rel
				}
				if err := r.AddRemote("origin", u); err != nil {
					t.Fatal(err)
				}
			}
			a1 := mustCommit(t, alice, plumbing.ZeroHash, "a1", write("s/signature-1", "alice"))
			if err := alice.Push(ctx, "origin", "refs/heads/main:refs/heads/main"); err != nil {
				t.Fatalf("first push: %v", err)
			}
			if err := alice.Push(ctx, "origin", "refs/heads/main:refs/heads/main"); err != nil {
				t.Errorf("push when up to date: %v", err)
			}
			if got, err := remote.Branch("main"); err != nil || got != a1 {
				t.Errorf("remote main = %s, %v; want %s", got, err, a1)
			}

			// bob fetches, builds on alice's commit and pushes.
			if err := bob.Fetch(ctx, "origin"); err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if err := bob.Fetch(ctx, "origin"); err != nil {
				t.Errorf("fetch when up to date: %v", err)
			}
			tracking, err := bob.reference("refs/remotes/origin/main")
			if err != nil || tracking != a1 {
				t.Fatalf("refs/remotes/origin/main = %s, %v", tracking, err)
			}
			s, err := bob.Snapshot(tracking)
			if err != nil {
				t.Fatal(err)
			}
			if data, err := s.ReadFile("s/signature-1"); err != nil || string(data) != "alice" {
				t.Errorf("fetched file = %q, %v", data, err)
			}
			if err := bob.Fetch(ctx, "origin", "refs/heads/main:refs/heads/main"); err == nil {
				t.Errorf("fetch into the checked-out branch succeeded")
			}
			setBranch(t, bob, "work", a1)
			b2, err := bob.Commit(CommitRequest{Branch: "work", Parents: []plumbing.Hash{a1},
				Changes: []Change{write("s/signature-2", "bob")}, Message: "b2", Author: testAuthor()})
			if err != nil {
				t.Fatal(err)
			}
			byURL := url
			if byURL == "" {
				byURL = "origin" // a relative path means nothing outside the repository
			}
			if err := bob.Push(ctx, byURL, "refs/heads/work:refs/heads/main"); err != nil {
				t.Fatalf("bob's push by URL: %v", err)
			}

			// alice's next commit does not build on bob's: refused.
			a2 := mustCommit(t, alice, a1, "a2", write("s/signature-2", "alice again"))
			err = alice.Push(ctx, "origin", "refs/heads/main:refs/heads/main")
			if !errors.Is(err, ErrNonFastForward) {
				t.Errorf("non-fast-forward push = %v, want ErrNonFastForward", err)
			}
			if got, _ := remote.Branch("main"); got != b2 {
				t.Errorf("remote main moved to %s, want %s", got, b2)
			}
			// Fetching without + into a branch that would lose commits is
			// refused too, and allowed with +.
			setBranch(t, alice, "mirror", a2)
			err = alice.Fetch(ctx, "origin", "refs/heads/main:refs/heads/mirror")
			if !errors.Is(err, ErrNonFastForward) {
				got, _ := alice.Branch("mirror")
				t.Errorf("non-fast-forward fetch = %v, want ErrNonFastForward (mirror %s a2 %s b2 %s)", err, got, a2, b2)
			}
			if err := alice.Fetch(ctx, "origin", "+refs/heads/main:refs/heads/mirror"); err != nil {
				t.Errorf("forced fetch: %v", err)
			}
			if got, _ := alice.Branch("mirror"); got != b2 {
				t.Errorf("mirror = %s after forced fetch, want %s", got, b2)
			}
		})
	}
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			if _, _, err := r.Upstream("main"); !errors.Is(err, ErrNoUpstream) {
				t.Errorf("Upstream before configuring = %v, want ErrNoUpstream", err)
			}
			if err := r.AddRemote("origin", "https://example.org/sigs.git"); err != nil {
				t.Fatal(err)
			}
			if err := r.SetUpstream("main", "origin", "refs/heads/release/2025.06.0"); err != nil {
				t.Fatal(err)
			}
			remote, merge, err := r.Upstream("refs/heads/main")
			if err != nil || remote != "origin" || merge != "refs/heads/release/2025.06.0" {
				t.Errorf("Upstream = %q, %q, %v", remote, merge, err)
			}
		})
	}
}

// TestInteropPushRefusedByHook: a remote hook's refusal is
// ErrRemoteRejected, and its lines reach the remote output as they arrive
// (without git's padding), or the error when no output is set.
func TestInteropPushRefusedByHook(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	ctx := context.Background()
	remote := diskRepo(t, true)
	hook := filepath.Join(remote.GitDir(), "hooks", "pre-receive")
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'tally: refused: commit abc: not signed' >&2\necho 'second line' >&2\nexit 1\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	local := diskRepo(t, false)
	if err := local.AddRemote("origin", remote.GitDir()); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, local, plumbing.ZeroHash, "a1", write("s/signature-1", "alice"))

	// No output set: the remote's lines are in the error.
	err := local.Push(ctx, "origin", "refs/heads/main:refs/heads/main")
	if !errors.Is(err, ErrRemoteRejected) {
		t.Fatalf("refused push = %v, want ErrRemoteRejected", err)
	}
	for _, want := range []string{"[remote rejected] (pre-receive hook declined)", "\nremote: tally: refused: commit abc: not signed\nremote: second line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// With an output: the lines go there, not into the error.
	var out bytes.Buffer
	local.SetRemoteOutput(&out)
	err = local.Push(ctx, "origin", "refs/heads/main:refs/heads/main")
	if !errors.Is(err, ErrRemoteRejected) || strings.Contains(err.Error(), "not signed") {
		t.Errorf("refused push with an output = %v", err)
	}
	if got, want := out.String(), "remote: tally: refused: commit abc: not signed\nremote: second line\n"; got != want {
		t.Errorf("remote output = %q, want %q", got, want)
	}
	if _, err := remote.Branch("main"); err == nil {
		t.Error("the refused branch exists on the remote")
	}
}

func TestInteropFetchMissingRef(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	remote := diskRepo(t, true)
	local := diskRepo(t, false)
	err := local.Fetch(context.Background(), remote.GitDir(), "+refs/heads/main:refs/remotes/x/main")
	if !errors.Is(err, ErrNoRemoteRef) {
		t.Errorf("fetching a branch the remote lacks = %v, want ErrNoRemoteRef", err)
	}
}

// TestRemoteRefusals: what Fetch and Push refuse before running git, and
// git's absence.
func TestRemoteRefusals(t *testing.T) {
	ctx := context.Background()
	mem := NewMemory(false)
	if err := mem.Push(ctx, "/tmp/x.git", "refs/heads/main:refs/heads/main"); !errors.Is(err, ErrInMemory) {
		t.Errorf("push from memory = %v, want ErrInMemory", err)
	}
	r := diskRepo(t, false)
	if err := r.Fetch(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), `no remote called "nosuch"`) {
		t.Errorf("fetch from an unknown remote = %v", err)
	}
	if err := r.Push(ctx, "origin", "not a refspec"); err == nil {
		t.Error("a bad refspec was pushed")
	}
	// An option spelled as a URL stays a URL: git is not told to run it.
	marker := filepath.Join(t.TempDir(), "ran")
	err := r.Fetch(ctx, "--upload-pack=touch "+marker+";", "+refs/heads/main:refs/x")
	if _, serr := os.Stat(marker); serr == nil {
		t.Errorf("a remote named like an option ran a command (fetch: %v)", err)
	}
	if err == nil {
		t.Error("fetching from an option succeeded")
	}
	t.Setenv("PATH", t.TempDir())
	if err := r.Push(ctx, "/tmp/x.git", "refs/heads/main:refs/heads/main"); !errors.Is(err, ErrNoGit) {
		t.Errorf("push without git = %v, want ErrNoGit", err)
	}
}
