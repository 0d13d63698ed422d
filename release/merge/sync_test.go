package merge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
)

// syncFixture is a repository whose main holds unpublished commits and
// whose branch "up" stands for what the upstream published meanwhile.
func syncFixture(t *testing.T, worktree bool) *sigRepo {
	t.Helper()
	r := newSigRepo(t, worktree, 2, "alice", "bob", "carol")
	r.branch("up", r.tip("main"))
	return r
}

// replayOnto replays main onto up and moves main there, as Sync does
// between its fetch and its push.
func (r *sigRepo) replayOnto(who string) *merge.Replayed {
	r.t.Helper()
	local, up := r.tip("main"), r.tip("up")
	rp, err := merge.Replay(r.repo, up, local, signerFor(r.t, who), mergeNow)
	if err != nil {
		r.t.Fatalf("replay: %v", err)
	}
	if err := r.repo.SetBranch(gitstore.BranchUpdate{Branch: "main", Old: local, New: rp.Tip()}); err != nil {
		r.t.Fatal(err)
	}
	return rp
}

func TestReplayRenumbersOnlyUnpublished(t *testing.T) {
	t.Parallel()
	for _, worktree := range []bool{true, false} {
		t.Run(map[bool]string{true: "worktree", false: "bare"}[worktree], func(t *testing.T) {
			t.Parallel()
			r := syncFixture(t, worktree)
			r.sign("up", "bob", "core-a")
			r.sign("up", "carol", "core-a", "core-c")
			published := r.files(r.tip("up"))
			publishedBytes := map[string]string{}
			for p := range published {
				publishedBytes[p] = r.read("up", p)
			}
			r.sign("main", "alice", "core-a", "core-b")
			r.sign("main", "alice", "core-c")
			oldCommits, err := r.repo.CommitsBetween(r.tip("up"), r.tip("main"))
			if err != nil {
				t.Fatal(err)
			}
			alicesA := r.read("main", sigPath("core-a", 1))

			rp := r.replayOnto("alice")
			want := map[string]string{
				sigPath("core-a", 1): "bob", sigPath("core-a", 2): "carol", sigPath("core-a", 3): "alice",
				sigPath("core-b", 1): "alice",
				sigPath("core-c", 1): "carol", sigPath("core-c", 2): "alice",
			}
			if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
				t.Errorf("files after replay (-want +got):\n%s", diff)
			}
			for p, data := range publishedBytes {
				if r.read("main", p) != data {
					t.Errorf("published %s changed", p)
				}
			}
			if r.read("main", sigPath("core-a", 3)) != alicesA {
				t.Error("the replayed signature did not keep its bytes")
			}
			wantMoves := []merge.Renumbered{
				{From: sigPath("core-a", 1), To: sigPath("core-a", 3)},
				{From: sigPath("core-c", 1), To: sigPath("core-c", 2)},
			}
			if diff := cmp.Diff(wantMoves, rp.Renumbered()); diff != "" {
				t.Errorf("renumbered (-want +got):\n%s", diff)
			}

			// Linear history on top of the upstream, one commit per
			// unpublished commit, same authors and messages, signed again.
			newCommits, err := r.repo.CommitsBetween(r.tip("up"), r.tip("main"))
			if err != nil {
				t.Fatal(err)
			}
			if len(newCommits) != len(oldCommits) {
				t.Fatalf("%d commits replayed, want %d", len(newCommits), len(oldCommits))
			}
			if ok, _ := r.repo.IsAncestor(r.tip("up"), r.tip("main")); !ok {
				t.Error("the upstream is not an ancestor of the replayed branch: the push would not fast-forward")
			}
			for i, c := range newCommits {
				old := oldCommits[i]
				if len(c.Parents) != 1 || c.Author != old.Author || len(c.Signature) == 0 {
					t.Errorf("replayed commit %d: parents %d, author %v (was %v), signed %v", i, len(c.Parents), c.Author, old.Author, len(c.Signature) > 0)
				}
				if !strings.HasPrefix(c.Message, strings.TrimRight(old.Message, "\n")) {
					t.Errorf("replayed message %q does not start with %q", c.Message, old.Message)
				}
			}
			if !strings.Contains(newCommits[0].Message, sigPath("core-a", 1)+" -> "+sigPath("core-a", 3)) {
				t.Errorf("the replayed commit does not say what moved:\n%s", newCommits[0].Message)
			}
			// Every commit only adds files to its parent: what a push hook accepts.
			for _, c := range newCommits {
				p, _ := r.repo.ReadCommit(c.Parents[0])
				diff, err := r.repo.Diff(p.Tree, c.Tree)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range diff {
					if d.Action != gitstore.Added && !merge.IsRecord(d.Path) {
						t.Errorf("replayed commit %s %s %s", merge.Short(c.Hash), d.Action, d.Path)
					}
				}
			}
			if worktree {
				if err := r.repo.Clean(); err != nil {
					t.Errorf("working tree after the replay: %v", err)
				}
			}
			r.verifyClean()
		})
	}
}

func TestReplayDropsWhatUpstreamHas(t *testing.T) {
	t.Parallel()
	r := syncFixture(t, true)
	// alice signed core-a from another clone and pushed it.
	r.sign("up", "alice", "core-a")
	// Here she signed core-a again, and also core-b, in one commit; then
	// core-a alone in a second commit, which becomes empty.
	r.sign("main", "alice", "core-b")
	blob := r.read("up", sigPath("core-a", 1))
	r.commit("main", "alice", "the same bytes again", gitstore.Change{Path: sigPath("core-a", 1), Data: []byte(blob)})
	rp := r.replayOnto("alice")
	if len(rp.Commits()) != 2 || rp.Commits()[0].New == "" || rp.Commits()[1].New != "" {
		t.Errorf("commits %+v: want the first replayed and the second dropped", rp.Commits())
	}
	if len(rp.Dropped()) != 1 || rp.Dropped()[0].Reason != merge.DropIdentical {
		t.Errorf("dropped %+v", rp.Dropped())
	}
	c, _ := r.repo.ReadCommit(r.tip("main"))
	if c.Parents[0] != r.tip("up") {
		t.Errorf("main's parent is %s, want the upstream %s", c.Parents[0], r.tip("up"))
	}

	// Same key, other bytes: dropped as same-key.
	r2 := syncFixture(t, false)
	r2.sign("up", "alice", "core-a")
	r2.sign("main", "alice", "core-a")
	rp2 := r2.replayOnto("alice")
	if len(rp2.Dropped()) != 1 || rp2.Dropped()[0].Reason != merge.DropSameKey || r2.tip("main") != r2.tip("up") {
		t.Errorf("dropped %+v, main %s up %s", rp2.Dropped(), r2.tip("main"), r2.tip("up"))
	}
}

func TestReplayBuildRecordsAndConflicts(t *testing.T) {
	t.Parallel()
	run := func(hour string) string {
		return "run time=2026-11-28T" + hour + ":00:00Z source=a dirty=no platform=p cpu-vendor=v cpu-model=m tally=t\n"
	}
	img := strings.Repeat("a", 64) + " core-a 1.0 linux/amd64\n"
	rec := func(runs ...string) []byte { return []byte(record.RecordHeader + "\n" + strings.Join(runs, "")) }

	r := syncFixture(t, true)
	path := policy.BuildRecordPath("2026.11.0", signerFor(t, "alice").Fingerprint())
	r.commit("main", "alice", "first", gitstore.Change{Path: path, Data: rec(run("10") + img)})
	r.branch("up2", r.tip("main"))
	// up: the first run was pushed, then another run from another clone.
	if err := r.repo.SetBranch(gitstore.BranchUpdate{Branch: "up", Old: r.tip("up"), New: r.tip("main")}); err != nil {
		t.Fatal(err)
	}
	r.commit("up", "alice", "other clone", gitstore.Change{Path: path, Data: rec(run("10")+img, run("11")+img)})
	r.commit("main", "alice", "here", gitstore.Change{Path: path, Data: rec(run("10")+img, run("12")+img)})
	r.replayOnto("alice")
	if got, want := r.read("main", path), string(rec(run("10")+img, run("11")+img, run("12")+img)); got != want {
		t.Errorf("record after replay:\n%s\nwant:\n%s", got, want)
	}

	// A policy change on both sides is a conflict; nothing moves.
	r = syncFixture(t, true)
	p := r.read("main", policy.PolicyFile)
	r.commit("up", "bob", "t3", gitstore.Change{Path: policy.PolicyFile, Data: []byte(strings.Replace(p, "threshold = 2", "threshold = 3", 1))})
	r.commit("main", "alice", "t1", gitstore.Change{Path: policy.PolicyFile, Data: []byte(strings.Replace(p, "threshold = 2", "threshold = 1", 1))})
	if _, err := merge.Replay(r.repo, r.tip("up"), r.tip("main"), signerFor(t, "alice"), mergeNow); !errors.Is(err, merge.ErrConflict) {
		t.Errorf("replay with a conflicting policy: %v, want ErrConflict", err)
	}

	// Replaying needs a maintainer's key.
	r = syncFixture(t, false)
	r.sign("up", "bob", "core-a")
	r.sign("main", "alice", "core-a")
	for _, s := range []struct {
		name string
		want error
	}{{"", merge.ErrNoSigner}, {"mallory", release.ErrUntrustedSigner}} {
		var err error
		if s.name == "" {
			_, err = merge.Replay(r.repo, r.tip("up"), r.tip("main"), nil, mergeNow)
		} else {
			_, err = merge.Replay(r.repo, r.tip("up"), r.tip("main"), signerFor(t, s.name), mergeNow)
		}
		if !errors.Is(err, s.want) {
			t.Errorf("signer %q: %v, want %v", s.name, err, s.want)
		}
	}
	// Nothing to replay needs no key.
	if rp, err := merge.Replay(r.repo, r.tip("main"), r.tip("main"), nil, mergeNow); err != nil || rp.Tip() != r.tip("main") {
		t.Errorf("empty replay: %v, %v", rp, err)
	}
}

// TestReplayLinearisesALocalMerge replays a clone whose unpublished history
// holds a tally merge of a colleague's branch: the result is linear, and the
// merge commit, whose changes the colleague's replayed commit already
// brought, is dropped.
func TestReplayLinearisesALocalMerge(t *testing.T) {
	t.Parallel()
	r := syncFixture(t, true)
	r.branch("bob", r.tip("main"))
	r.sign("main", "alice", "core-a")
	r.sign("bob", "bob", "core-a", "core-b")
	if _, err := r.merge("alice", false, "bob"); err != nil {
		t.Fatal(err)
	}
	r.sign("up", "carol", "core-a")
	rp := r.replayOnto("alice")
	want := map[string]string{
		sigPath("core-a", 1): "carol", sigPath("core-a", 2): "alice", sigPath("core-a", 3): "bob",
		sigPath("core-b", 1): "bob",
	}
	if diff := cmp.Diff(want, r.files(r.tip("main"))); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	commits, err := r.repo.CommitsBetween(r.tip("up"), r.tip("main"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		if len(c.Parents) != 1 {
			t.Errorf("replayed commit %s has %d parents", merge.Short(c.Hash), len(c.Parents))
		}
	}
	dropped := 0
	for _, c := range rp.Commits() {
		if c.New == "" {
			dropped++
		}
	}
	if len(commits) != 2 || dropped != 1 {
		t.Errorf("%d commits on top of the upstream, %d dropped; want 2 and the merge dropped", len(commits), dropped)
	}
	r.verifyClean()
}
