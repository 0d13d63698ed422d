package gitstore

import (
	"context"
	"errors"
	"path/filepath"
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
