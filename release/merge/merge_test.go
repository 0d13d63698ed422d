package merge_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// sigPath is the lookaside path of signature n of image (digest digestOf(image)).
func sigPath(image string, n int) string {
	return sigstore.Location{Repository: "stagex/" + image, Digest: digestOf(image), Number: n}.Path()
}

func TestMergeRules(t *testing.T) {
	t.Parallel()
	for _, worktree := range []bool{true, false} {
		name := "bare"
		if worktree {
			name = "worktree"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("disjoint", func(t *testing.T) {
				t.Parallel()
				r := newSigRepo(t, worktree, 2, "alice", "bob", "carol")
				r.branch("bob", r.tip("main"))
				r.sign("main", "alice", "core-a")
				r.sign("bob", "bob", "core-b")
				before := r.read("main", sigPath("core-a", 1))
				res, err := r.merge("alice", false, "bob")
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]string{sigPath("core-a", 1): "alice", sigPath("core-b", 1): "bob"}
				if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
					t.Errorf("files after merge (-want +got):\n%s", diff)
				}
				if got := r.read("main", sigPath("core-a", 1)); got != before {
					t.Error("the target's signature-1 changed")
				}
				if len(res.Added) != 1 || res.Added[0].Path != sigPath("core-b", 1) || res.Added[0].From != sigPath("core-b", 1) {
					t.Errorf("added %+v", res.Added)
				}
				checkMergeCommit(t, r, res, r.tip("bob"))
				if worktree {
					if err := r.repo.Clean(); err != nil {
						t.Errorf("working tree after merge: %v", err)
					}
				}
				r.verifyClean()
			})
			t.Run("overlapping", func(t *testing.T) {
				t.Parallel()
				r := newSigRepo(t, worktree, 2, "alice", "bob", "carol")
				r.branch("bob", r.tip("main"))
				r.sign("main", "alice", "core-a", "core-c")
				r.sign("bob", "bob", "core-a", "core-b")
				mine := r.read("main", sigPath("core-a", 1))
				res, err := r.merge("alice", false, "bob")
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]string{
					sigPath("core-a", 1): "alice", sigPath("core-a", 2): "bob",
					sigPath("core-b", 1): "bob", sigPath("core-c", 1): "alice",
				}
				if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
					t.Errorf("files after merge (-want +got):\n%s", diff)
				}
				if r.read("main", sigPath("core-a", 1)) != mine {
					t.Error("the target's signature-1 changed")
				}
				if got := r.read("main", sigPath("core-a", 2)); got != r.read("bob", sigPath("core-a", 1)) {
					t.Error("bob's signature did not keep its bytes when renumbered")
				}
				wantAdded := []merge.MergedFile{
					{Source: "bob", From: sigPath("core-a", 1), Path: sigPath("core-a", 2), Signer: signerFor(t, "bob").Fingerprint()},
					{Source: "bob", From: sigPath("core-b", 1), Path: sigPath("core-b", 1), Signer: signerFor(t, "bob").Fingerprint()},
				}
				if diff := cmp.Diff(wantAdded, res.Added); diff != "" {
					t.Errorf("added (-want +got):\n%s", diff)
				}
				rep := r.verifyClean()
				for _, img := range rep.Images {
					if img.Name == "core-a" && !img.Quorum {
						t.Errorf("core-a has no quorum after merging two maintainers: %+v", img)
					}
				}
			})
			t.Run("identical", func(t *testing.T) {
				t.Parallel()
				r := newSigRepo(t, worktree, 2, "alice", "bob", "carol")
				r.branch("copy", r.tip("main"))
				blob := r.blob("alice", "core-a", digestOf("core-a"))
				r.commit("main", "alice", "alice signs", gitstore.Change{Path: sigPath("core-a", 1), Data: blob})
				// The same bytes reach another branch, at another number.
				r.commit("copy", "bob", "copied", gitstore.Change{Path: sigPath("core-a", 1), Data: blob})
				res, err := r.merge("alice", false, "copy")
				if err != nil {
					t.Fatal(err)
				}
				wantDropped := []merge.DroppedFile{{Source: "copy", From: sigPath("core-a", 1), Reason: merge.DropIdentical, Existing: sigPath("core-a", 1)}}
				if diff := cmp.Diff(wantDropped, res.Dropped); diff != "" {
					t.Errorf("dropped (-want +got):\n%s", diff)
				}
				if len(res.Added) != 0 || res.Commit == "" {
					t.Errorf("added %v, commit %q; want nothing added but a merge commit", res.Added, res.Commit)
				}
				if got := r.files(r.tip("main")); len(got) != 1 {
					t.Errorf("files %v", got)
				}
			})
			t.Run("same key twice", func(t *testing.T) {
				t.Parallel()
				r := newSigRepo(t, worktree, 2, "alice", "bob", "carol")
				r.branch("laptop", r.tip("main"))
				r.sign("main", "alice", "core-a")
				// alice signed again on another machine: other bytes, same key.
				r.sign("laptop", "alice", "core-a", "core-b")
				if r.read("main", sigPath("core-a", 1)) == r.read("laptop", sigPath("core-a", 1)) {
					t.Fatal("test setup: two signing runs gave the same bytes")
				}
				res, err := r.merge("alice", false, "laptop")
				if err != nil {
					t.Fatal(err)
				}
				wantDropped := []merge.DroppedFile{{Source: "laptop", From: sigPath("core-a", 1), Reason: merge.DropSameKey, Existing: sigPath("core-a", 1)}}
				if diff := cmp.Diff(wantDropped, res.Dropped); diff != "" {
					t.Errorf("dropped (-want +got):\n%s", diff)
				}
				want := map[string]string{sigPath("core-a", 1): "alice", sigPath("core-b", 1): "alice"}
				if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
					t.Errorf("files (-want +got):\n%s", diff)
				}
				r.verifyClean()
			})
			t.Run("subkey counts as its primary", func(t *testing.T) {
				t.Parallel()
				r := newSigRepo(t, worktree, 2, "alice", "dave")
				r.branch("dave2", r.tip("main"))
				r.sign("main", "dave", "core-a")
				r.sign("dave2", "dave", "core-a")
				res, err := r.merge("alice", false, "dave2")
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Dropped) != 1 || res.Dropped[0].Reason != merge.DropSameKey {
					t.Errorf("dropped %+v, want dave's second signature as same-key", res.Dropped)
				}
			})
		})
	}
}

// checkMergeCommit checks that the merge made one commit on main whose
// parents are the old tip and the sources, signed by the maintainer.
func checkMergeCommit(t *testing.T, r *sigRepo, res *merge.MergeResult, sources ...plumbing.Hash) {
	t.Helper()
	c, err := r.repo.ReadCommit(r.tip("main"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash.String() != res.Commit {
		t.Errorf("main is at %s, the result says %s", c.Hash, res.Commit)
	}
	if len(c.Parents) != 1+len(sources) {
		t.Fatalf("merge commit has %d parents, want %d", len(c.Parents), 1+len(sources))
	}
	for i, s := range sources {
		if c.Parents[i+1] != s {
			t.Errorf("parent %d = %s, want %s", i+2, c.Parents[i+1], s)
		}
	}
	if len(c.Signature) == 0 || !bytes.HasPrefix(c.Signature, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Errorf("merge commit is not signed: %q", c.Signature)
	}
	if !strings.HasPrefix(c.Message, "merge ") {
		t.Errorf("merge commit message %q", c.Message)
	}
}

func TestMergeInvalidIncoming(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "allowed"}[allow], func(t *testing.T) {
			t.Parallel()
			r := newSigRepo(t, true, 2, "alice", "bob", "carol")
			r.branch("bad", r.tip("main"))
			r.sign("main", "alice", "core-a")
			good := r.blob("bob", "core-a", digestOf("core-a"))
			wrongDigest := r.blob("bob", "core-b", digestOf("core-x"))
			outsider := r.blob("mallory", "core-c", digestOf("core-c"))
			r.commit("bad", "bob", "mixed bag",
				gitstore.Change{Path: sigPath("core-a", 1), Data: good},
				gitstore.Change{Path: sigPath("core-b", 1), Data: wrongDigest},
				gitstore.Change{Path: sigPath("core-c", 1), Data: outsider},
				gitstore.Change{Path: sigPath("core-d", 1), Data: []byte("garbage")},
				gitstore.Change{Path: "stagex/core-e@sha256=" + strings.Repeat("0", 64) + "/notes.txt", Data: []byte("hello")},
			)
			res, err := r.merge("alice", allow, "bad")
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]string{}
			for _, f := range res.Rejected {
				kinds[f.From] = f.Kind
				if f.Merged != allow {
					t.Errorf("%s: merged = %v", f.From, f.Merged)
				}
			}
			wantKinds := map[string]string{
				sigPath("core-b", 1): string(sigstore.KindWrongDigest),
				sigPath("core-c", 1): string(sigstore.KindUnknownSigner),
				sigPath("core-d", 1): string(sigstore.KindGarbage),
				"stagex/core-e@sha256=" + strings.Repeat("0", 64) + "/notes.txt": string(sigstore.KindMalformedPath),
			}
			if diff := cmp.Diff(wantKinds, kinds); diff != "" {
				t.Errorf("rejected kinds (-want +got):\n%s", diff)
			}
			if !res.Invalid() {
				t.Error("Invalid() is false with invalid incoming files")
			}
			files := r.files(r.tip("main"))
			if files[sigPath("core-a", 2)] != "bob" {
				t.Errorf("the good incoming signature was not merged: %v", files)
			}
			for from := range wantKinds {
				_, there := files[strings.Replace(from, "core-x", "core-b", 1)]
				if there != allow {
					t.Errorf("%s in the tree: %v, want %v", from, there, allow)
				}
			}
			if !allow {
				r.verifyClean()
			}
		})
	}
}

func TestMergeThreeMaintainers(t *testing.T) {
	t.Parallel()
	r := newSigRepo(t, true, 3, "alice", "bob", "carol")
	base := r.tip("main")
	r.branch("bob", base)
	r.branch("carol", base)
	r.sign("main", "alice", "core-a", "core-b")
	r.sign("bob", "bob", "core-b", "core-a")
	r.sign("carol", "carol", "core-a")
	r.sign("carol", "carol", "core-b")
	firsts := map[string]string{
		sigPath("core-a", 1): r.read("main", sigPath("core-a", 1)),
		sigPath("core-b", 1): r.read("main", sigPath("core-b", 1)),
	}
	res, err := r.merge("alice", false, "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	checkMergeCommit(t, r, res, r.tip("bob"), r.tip("carol"))
	want := map[string]string{
		sigPath("core-a", 1): "alice", sigPath("core-a", 2): "bob", sigPath("core-a", 3): "carol",
		sigPath("core-b", 1): "alice", sigPath("core-b", 2): "bob", sigPath("core-b", 3): "carol",
	}
	if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	for p, data := range firsts {
		if r.read("main", p) != data {
			t.Errorf("%s changed", p)
		}
	}
	rep := r.verifyClean()
	if !rep.QuorumMet() {
		t.Errorf("3-of-3 quorum not met after merging all three maintainers: %+v", rep.Images)
	}

	// The same merge again changes nothing, in either order.
	tip := r.tip("main")
	for _, sources := range [][]string{{"bob", "carol"}, {"carol"}, {"bob"}} {
		again, err := r.merge("alice", false, sources...)
		if err != nil {
			t.Fatal(err)
		}
		if !again.UpToDate() || r.tip("main") != tip {
			t.Errorf("merging %v again: commit %q, main moved from %s to %s", sources, again.Commit, tip, r.tip("main"))
		}
		for _, s := range again.Sources {
			if !s.UpToDate {
				t.Errorf("source %s not reported up to date", s.Source)
			}
		}
	}
}

// TestMergeDeterministic merges the same sources twice from the same
// starting point (moving main back in between): the trees are identical.
func TestMergeDeterministic(t *testing.T) {
	t.Parallel()
	r := newSigRepo(t, false, 2, "alice", "bob", "carol")
	base := r.tip("main")
	r.branch("bob", base)
	r.branch("carol", base)
	images := []string{"core-a", "core-b", "core-c", "core-d", "core-e", "core-f", "core-g", "core-h", "core-i", "core-j", "core-k"}
	r.sign("main", "alice", images[:4]...)
	r.sign("bob", "bob", images...)
	r.sign("carol", "carol", images[3:]...)
	r.sign("carol", "carol", images[:3]...)
	start := r.tip("main")
	var trees []plumbing.Hash
	var added [][]merge.MergedFile
	for range 2 {
		res, err := r.merge("alice", false, "carol", "bob")
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, r.snap(r.tip("main")).Tree())
		added = append(added, res.Added)
		if err := r.repo.SetBranch(gitstore.BranchUpdate{Branch: "main", Old: r.tip("main"), New: start}); err != nil {
			t.Fatal(err)
		}
	}
	if trees[0] != trees[1] {
		t.Errorf("the same merge gave trees %s and %s", trees[0], trees[1])
	}
	if diff := cmp.Diff(added[0], added[1]); diff != "" {
		t.Errorf("the same merge added differently:\n%s", diff)
	}
	// Sources in the order given: carol before bob wherever both are new.
	for _, f := range added[0] {
		if f.From == sigPath("core-e", 1) && f.Source == "carol" && f.Path != sigPath("core-e", 1) {
			t.Errorf("carol's core-e went to %s", f.Path)
		}
		if f.From == sigPath("core-e", 1) && f.Source == "bob" && f.Path != sigPath("core-e", 2) {
			t.Errorf("bob's core-e went to %s", f.Path)
		}
	}
}

func TestMergeBuildRecordsUnion(t *testing.T) {
	t.Parallel()
	r := newSigRepo(t, true, 2, "alice", "bob")
	rec := func(lines ...string) []byte {
		return []byte(record.RecordHeader + "\n" + strings.Join(lines, "\n") + "\n")
	}
	run1 := "run time=2026-11-28T10:00:00Z source=abc dirty=no platform=linux/amd64 cpu-vendor=x cpu-model=y tally=0.1"
	run2 := "run time=2026-11-28T11:00:00Z source=abc dirty=no platform=linux/amd64 cpu-vendor=x cpu-model=y tally=0.1"
	run3 := "run time=2026-11-28T12:00:00Z source=abc dirty=no platform=linux/amd64 cpu-vendor=x cpu-model=y tally=0.1"
	img := func(name string) string {
		return strings.TrimPrefix(digestOf(name), "sha256:") + " " + name + " 1.0 linux/amd64"
	}
	path := policy.BuildRecordPath("2026.11.0", signerFor(t, "alice").Fingerprint())
	bobPath := policy.BuildRecordPath("2026.11.0", signerFor(t, "bob").Fingerprint())
	r.commit("main", "alice", "record", gitstore.Change{Path: path, Data: rec(run1, img("core-a"))})
	r.branch("laptop", r.tip("main"))
	r.commit("main", "alice", "record", gitstore.Change{Path: path, Data: rec(run1, img("core-a"), run2, img("core-b"))})
	r.commit("laptop", "alice", "record", gitstore.Change{Path: path, Data: rec(run1, img("core-a"), run3, img("core-c"))},
		gitstore.Change{Path: bobPath, Data: rec(run1, img("core-a"))})
	target := r.read("main", path)
	res, err := r.merge("alice", false, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	got := r.read("main", path)
	want := string(rec(run1, img("core-a"), run2, img("core-b"), run3, img("core-c")))
	if got != want {
		t.Errorf("merged record:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasPrefix(got, target) {
		t.Error("the target's record is not a prefix of the merged one")
	}
	if r.read("main", bobPath) != r.read("laptop", bobPath) {
		t.Error("a record only the source has was not taken as it is")
	}
	if diff := cmp.Diff([]string{bobPath, path}, res.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if _, err := record.ParseBuildRecord([]byte(got)); err != nil {
		t.Errorf("merged record does not parse: %v", err)
	}
}

func TestUnionRecord(t *testing.T) {
	t.Parallel()
	h := record.RecordHeader + "\n"
	r1 := "run time=2026-11-28T10:00:00Z source=a dirty=no platform=p cpu-vendor=v cpu-model=m tally=t\n"
	r2 := "run time=2026-11-28T11:00:00Z source=a dirty=no platform=p cpu-vendor=v cpu-model=m tally=t\n"
	i1 := strings.Repeat("a", 64) + " core-a 1.0 linux/amd64\n"
	i2 := strings.Repeat("b", 64) + " core-b 1.0 linux/amd64\n"
	tests := []struct {
		name, target, incoming, want string
		changed                      bool
	}{
		{"same", h + r1 + i1, h + r1 + i1, h + r1 + i1, false},
		{"incoming appended", h + r1 + i1, h + r1 + i1 + r2 + i2, h + r1 + i1 + r2 + i2, true},
		{"target ahead", h + r1 + i1 + r2 + i2, h + r1 + i1, h + r1 + i1 + r2 + i2, false},
		{"diverged", h + r1 + i1, h + r2 + i2, h + r1 + i1 + r2 + i2, true},
		{"last run extended", h + r1 + i1, h + r1 + i1 + i2, h + r1 + i1 + r1 + i2, true},
		{"target's run extended", h + r1 + i1 + i2, h + r1 + i1, h + r1 + i1 + i2, false},
		{"same run twice in the target", h + r1 + i1 + r1 + i2, h + r1 + i1 + i2, h + r1 + i1 + r1 + i2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := record.UnionRecord([]byte(tt.target), []byte(tt.incoming))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want || changed != tt.changed {
				t.Errorf("union = %q (changed %v), want %q (%v)", got, changed, tt.want, tt.changed)
			}
			if !strings.HasPrefix(string(got), tt.target) {
				t.Error("the target is not a prefix of the union")
			}
			again, changedAgain, err := record.UnionRecord(got, []byte(tt.incoming))
			if err != nil || changedAgain || !bytes.Equal(again, got) {
				t.Errorf("union is not idempotent: %q, %v, %v", again, changedAgain, err)
			}
		})
	}
	if _, _, err := record.UnionRecord([]byte(h+r1+i1), []byte("not a record\n")); !errors.Is(err, record.ErrBadRecord) {
		t.Errorf("bad incoming record: %v, want ErrBadRecord", err)
	}
}

func TestMergeOtherFiles(t *testing.T) {
	t.Parallel()
	t.Run("taken when only the source changed them", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, true, 2, "alice", "bob", "carol")
		r.branch("other", r.tip("main"))
		r.commit("other", "bob", "notes", gitstore.Change{Path: "releases/2026.11.0/notes.txt", Data: []byte("hi\n")})
		res, err := r.merge("alice", false, "other")
		if err != nil {
			t.Fatal(err)
		}
		if r.read("main", "releases/2026.11.0/notes.txt") != "hi\n" || len(res.Files) != 1 {
			t.Errorf("files %v", res.Files)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, true, 2, "alice", "bob", "carol")
		r.branch("other", r.tip("main"))
		p := r.read("main", policy.PolicyFile)
		r.commit("main", "alice", "threshold 3", gitstore.Change{Path: policy.PolicyFile, Data: []byte(strings.Replace(p, "threshold = 2", "threshold = 3", 1))})
		r.commit("other", "bob", "threshold 1", gitstore.Change{Path: policy.PolicyFile, Data: []byte(strings.Replace(p, "threshold = 2", "threshold = 1", 1))})
		tip := r.tip("main")
		_, err := r.merge("alice", false, "other")
		if !errors.Is(err, merge.ErrConflict) || !strings.Contains(err.Error(), policy.PolicyFile) {
			t.Fatalf("err = %v, want ErrConflict naming %s", err, policy.PolicyFile)
		}
		if r.tip("main") != tip {
			t.Error("main moved on a refused merge")
		}
	})
	t.Run("incoming judged by the merged keyring", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, true, 2, "alice", "bob", "carol")
		r.branch("newkey", r.tip("main"))
		// The other line adds paula to the keyring, and paula signs there.
		other := newSigRepo(t, false, 2, "alice", "bob", "carol", "paula")
		st, err := policy.LoadCommit(other.repo, other.tip("main"))
		if err != nil {
			t.Fatal(err)
		}
		keyring, _ := st.Snap.ReadFile(st.Policy.Keyring)
		r.commit("newkey", "bob", "add paula", gitstore.Change{Path: st.Policy.Keyring, Data: keyring})
		r.sign("newkey", "paula", "core-a")
		res, err := r.merge("alice", false, "newkey")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Added) != 1 || len(res.Rejected) != 0 {
			t.Errorf("added %+v rejected %+v", res.Added, res.Rejected)
		}
	})
}

func TestMergeRefusals(t *testing.T) {
	t.Parallel()
	r := newSigRepo(t, true, 2, "alice", "bob", "carol")
	r.branch("bob", r.tip("main"))
	r.sign("bob", "bob", "core-a")
	ctx := context.Background()
	tests := []struct {
		name string
		opts merge.MergeOptions
		want error
	}{
		{"no sources", merge.MergeOptions{Signer: signerFor(t, "alice")}, merge.ErrBadSource},
		{"unknown source", merge.MergeOptions{Sources: []string{"nope"}, Signer: signerFor(t, "alice")}, merge.ErrBadSource},
		{"branch after a ref", merge.MergeOptions{Sources: []string{"bob#main"}, Signer: signerFor(t, "alice")}, merge.ErrBadSource},
		{"no signer", merge.MergeOptions{Sources: []string{"bob"}}, merge.ErrNoSigner},
		{"outsider signs", merge.MergeOptions{Sources: []string{"bob"}, Signer: signerFor(t, "mallory")}, release.ErrUntrustedSigner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tip := r.tip("main")
			_, err := merge.Merge(ctx, r.repo, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if r.tip("main") != tip {
				t.Error("main moved")
			}
		})
	}
}

func TestLooksLikeRepository(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"bob": false, "origin/main": false, "refs/heads/x": false, "HEAD~1": false,
		"../sigs": true, "./sigs": true, "/srv/sigs.git": true, "https://example.org/sigs.git": true,
		"git@example.org:sigs.git": true, "file:///srv/sigs": true, ".": true,
	} {
		if got := merge.LooksLikeRepository(s); got != want {
			t.Errorf("looksLikeRepository(%q) = %v, want %v", s, got, want)
		}
	}
}
