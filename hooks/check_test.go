package hooks

import (
	"bytes"
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// TestAccepted lists changes a guarded repository must accept.
func TestAccepted(t *testing.T) {
	t.Parallel()
	carol := testkeys.Fingerprint("carol")
	for name, build := range map[string]func(t *testing.T, f *fixture) plumbing.Hash{
		"a maintainer signs": func(t *testing.T, f *fixture) plumbing.Hash {
			return f.on(f.base, "carol", "sign by carol",
				add(hello3, signature(t, "carol", "core-hello", "1.0", dHello)),
				add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)),
				add(policy.BuildRecordPath(recordRel, carol), recordFile(t, nil, carol, dHello, dMulti)))
		},
		"a new image": func(t *testing.T, f *fixture) plumbing.Hash {
			d := digest("core-new")
			return f.on(f.base, "alice", "sign", add(sigPath("core-new", d, 1), signature(t, "alice", "core-new", "3.0", d)))
		},
		"a build record grows": func(t *testing.T, f *fixture) plumbing.Hash {
			return f.on(f.base, "alice", "sign",
				add(policy.BuildRecordPath(recordRel, aliceFpr), recordFile(t, f.record, aliceFpr, dMulti)))
		},
		"the threshold rises": func(t *testing.T, f *fixture) plumbing.Hash {
			return f.on(f.base, "bob", "raise", policyFiles(t, 3, "alice", "bob", "carol")[0])
		},
		"a release commit": func(t *testing.T, f *fixture) plumbing.Hash {
			return f.on(f.base, "alice", "release",
				add("releases/2026.11.0/digests.txt", []byte("x\n")), add("releases/2026.11.0/release.json", []byte("{}\n")))
		},
		"an extra path": func(t *testing.T, f *fixture) plumbing.Hash {
			p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2, Keyring: "stagex-keyring.pgp",
				ExtraPaths: policy.NewNames("README.md", "docs/")}
			// Listing extra paths changes the policy: it needs approvals.
			next := f.on(f.base, "alice", "extra paths", add(policy.PolicyFile, p.Marshal()))
			next = approve(t, f, f.base, next, "alice", "bob")
			return f.on(next, "bob", "docs", add("README.md", []byte("hello\n")), add("docs/a/b.md", []byte("b\n")))
		},
		"a merge of two maintainers' signatures": func(t *testing.T, f *fixture) plumbing.Hash {
			a := f.on(f.base, "carol", "carol", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
			b := f.on(f.base, "bob", "bob", add(sigPath("core-multi", dMulti, 2), signature(t, "bob", "core-multi", "2.0", dMulti)))
			// The merge renumbers bob's to signature-3 relative to its first parent.
			snap, _ := f.open().Snapshot(b)
			data, _ := snap.ReadFile(multi2)
			return f.commit("alice", "merge", []plumbing.Hash{a, b}, add(sigPath("core-multi", dMulti, 3), data))
		},
		"a merge that unions another maintainer's build record": func(t *testing.T, f *fixture) plumbing.Hash {
			bobRecord := policy.BuildRecordPath(recordRel, bobFpr)
			b := f.on(f.base, "bob", "bob", add(bobRecord, recordFile(t, nil, bobFpr, dHello)))
			a := f.on(f.base, "alice", "alice", add(policy.BuildRecordPath(recordRel, aliceFpr), recordFile(t, f.record, aliceFpr, dMulti)))
			snap, _ := f.open().Snapshot(b)
			data, _ := snap.ReadFile(bobRecord)
			// alice merges bob's line of work: bob's record arrives as bob wrote it.
			return f.commit("alice", "merge", []plumbing.Hash{a, b}, add(bobRecord, data))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tip := build(t, f)
			if res := f.check(f.base, tip); !res.OK() {
				t.Errorf("refused:%s", describe(res))
			}
		})
	}
}

// approve adds, on top of tip, the approvals by keys of the change from the
// policy at from to the one at tip, and returns the new tip.
func approve(t testing.TB, f *fixture, from, tip plumbing.Hash, keys ...string) plumbing.Hash {
	t.Helper()
	repo := f.open()
	var sts states
	load := func(h plumbing.Hash) *policyState {
		snap, err := repo.Snapshot(h)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sts.load(snap)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	st, _ := changeStatement(load(from), load(tip), from)
	edits := []edit{add(statementPath(st.ID()), st.Marshal())}
	for _, k := range keys {
		sig, err := signer(t, k).SignDetached(st.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		edits = append(edits, add(approvalPath(st.ID(), testkeys.Fingerprint(k)), sig))
	}
	return f.on(tip, keys[0], "approvals", edits...)
}

func TestPolicyChangeApprovals(t *testing.T) {
	t.Parallel()
	addDave := func(t *testing.T, f *fixture) plumbing.Hash {
		return f.on(f.base, "alice", "add dave", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "dave")))
	}
	t.Run("approvals after the change, in the tip", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		p := addDave(t, f)
		tip := approve(t, f, f.base, p, "alice", "bob")
		res := f.check(f.base, tip)
		if !res.OK() {
			t.Fatalf("refused:%s", describe(res))
		}
		if len(res.Notes) == 0 || !strings.Contains(res.Notes[0], aliceFpr) || !strings.Contains(res.Notes[0], bobFpr) {
			t.Errorf("notes %q do not name the approvers", res.Notes)
		}
		// Pushing only the change, without the approvals, is refused.
		if res := f.check(f.base, p); res.OK() {
			t.Errorf("the change alone was accepted")
		}
	})
	t.Run("approvals first, on the branch", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		p := addDave(t, f)
		approved := approve(t, f, f.base, p, "bob", "carol")
		// Move the approvals before the change: approvals commit on base.
		repo := f.open()
		snap, _ := repo.Snapshot(approved)
		var edits []edit
		_ = snap.Walk(policy.ApprovalsDir, func(p string, e gitstore.Entry) error {
			if !e.IsDir() {
				data, _ := snap.ReadFile(p)
				edits = append(edits, add(p, data))
			}
			return nil
		})
		first := f.on(f.base, "bob", "approvals", edits...)
		if res := f.check(f.base, first); !res.OK() {
			t.Fatalf("the approvals alone were refused:%s", describe(res))
		}
		change := f.on(first, "carol", "add dave", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "dave")))
		if res := f.check(first, change); !res.OK() {
			t.Fatalf("the approved change was refused:%s", describe(res))
		}
	})
	t.Run("one approval is not enough", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		tip := approve(t, f, f.base, addDave(t, f), "alice")
		res := f.check(f.base, tip)
		if res.OK() || !strings.Contains(describe(res), "it has 1 ("+aliceFpr+")") {
			t.Errorf("want a refusal counting one approval:%s", describe(res))
		}
	})
	t.Run("approvals of another change do not count", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		other := f.on(f.base, "alice", "add mallory", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "mallory")))
		approved := approve(t, f, f.base, other, "alice", "bob")
		// Now a different change on top of those approvals.
		snap, _ := f.open().Snapshot(approved)
		var edits []edit
		_ = snap.Walk(policy.ApprovalsDir, func(p string, e gitstore.Entry) error {
			if !e.IsDir() {
				data, _ := snap.ReadFile(p)
				edits = append(edits, add(p, data))
			}
			return nil
		})
		first := f.on(f.base, "bob", "approvals", edits...)
		change := f.on(first, "carol", "add dave", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "dave")))
		if res := f.check(f.base, change); res.OK() {
			t.Errorf("approvals of adding mallory let dave in")
		}
	})
	t.Run("approvals by a key the change adds do not count", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		tip := approve(t, f, f.base, addDave(t, f), "alice", "dave")
		if res := f.check(f.base, tip); res.OK() {
			t.Errorf("dave approved his own admission")
		}
	})
}

// TestRemovedMaintainerCannotSignOldBranch: a key removed from the current
// policy cannot bring commits in through history branched before its removal.
func TestRemovedMaintainerCannotSignOldBranch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	removed := f.on(f.base, "alice", "remove carol", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob")))
	current := approve(t, f, f.base, removed, "alice", "bob")
	if res := f.check(f.base, current); !res.OK() {
		t.Fatalf("removing carol was refused:%s", describe(res))
	}
	// Carol branches from the old base (where she was a maintainer) and merges.
	side := f.on(f.base, "carol", "carol signs", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	merge := f.commit("carol", "merge", []plumbing.Hash{side, current})
	res := f.check(current, merge)
	if res.OK() {
		t.Fatal("a removed maintainer's commits were accepted")
	}
	if !strings.Contains(describe(res), "not in the keyring (the repository's current trust policy)") {
		t.Errorf("want a refusal naming the current trust policy:%s", describe(res))
	}
}

func TestKeyLifetimeAtNow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tip := f.on(f.base, "carol", "sign", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	// Judged at commit time only, it passes; a check "now" before the
	// commit's time finds carol's key fine too. A check far in the future
	// works as long as the keys do not expire (the fixtures do not).
	for _, opts := range []Options{{}, {Now: func() time.Time { return t0.AddDate(5, 0, 0) }}} {
		res, err := Check(f.open(), f.base, tip, opts)
		if err != nil || !res.OK() {
			t.Errorf("Check(%+v): %v%s", opts, err, describe(res))
		}
	}
}

func TestTrustRoot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Checking from the beginning: the init commit has no parent policy.
	res, err := Check(f.open(), plumbing.ZeroHash, f.base, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.Refusals[0].Rule != RuleTrustRoot {
		t.Errorf("want the root refused without bootstrap:%s", describe(res))
	}
	res, err = Check(f.open(), plumbing.ZeroHash, f.base, Options{Now: now, Bootstrap: true})
	if err != nil || !res.OK() || len(res.Notes) != 1 || res.Commits != 3 {
		t.Errorf("bootstrap: %v, %d commits, notes %q%s", err, res.Commits, res.Notes, describe(res))
	}
	// An unrelated root merged into the history is refused.
	root := f.commit("alice", "unrelated", nil, add("x", []byte("x")))
	merge := f.commit("alice", "merge", []plumbing.Hash{f.base, root})
	if res := f.check(f.base, merge); res.OK() {
		t.Errorf("an unrelated root came in with a merge")
	}
}

func TestCheckCommitAndCounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := CheckCommit(f.open(), f.base, Options{Now: now})
	if err != nil || !res.OK() || res.Commits != 1 || res.Signatures != 1 {
		t.Errorf("CheckCommit(base): %v, %+v", err, res)
	}
	res = f.check(f.init, f.base)
	if !res.OK() || res.Commits != 2 || res.Signatures != 3 {
		t.Errorf("Check(init..base) = %+v", res)
	}
	if res := f.check(f.base, f.base); !res.OK() || res.Commits != 0 {
		t.Errorf("an empty range: %+v", res)
	}
}

func TestRefusalString(t *testing.T) {
	t.Parallel()
	h := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	for _, tc := range []struct {
		r    Refusal
		want string
	}{
		{Refusal{Commit: h, Path: "a/b", Reason: "bad"}, "a/b: bad (commit 0123456789ab)"},
		{Refusal{Commit: h, Reason: "unsigned"}, "commit 0123456789ab: unsigned"},
		{Refusal{Ref: "refs/tags/v1", Reason: "moved"}, "refs/tags/v1: moved"},
		{Refusal{Path: "x", Reason: "staged"}, "x: staged"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// TestMergeCannotForgeAnotherRecord: a merge commit may bring in lines of
// another maintainer's build record only as that record holds them in the
// merged parent; a line the merger made up is refused.
func TestMergeCannotForgeAnotherRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bobRecord := policy.BuildRecordPath(recordRel, bobFpr)
	b := f.on(f.base, "bob", "bob", add(bobRecord, recordFile(t, nil, bobFpr, dHello)))
	forged := recordFile(t, nil, bobFpr, dHello, digest("evil"))
	tip := f.commit("alice", "merge", []plumbing.Hash{f.base, b}, add(bobRecord, forged))
	res := f.check(f.base, tip)
	if res.OK() || !strings.Contains(describe(res), "may change only its signer's own record") {
		t.Errorf("a forged line in bob's record was not refused:%s", describe(res))
	}
}

// TestExpiredSignatureRefused: a signature that carries an expiry time which
// has passed can never count (clients reject it), so it is refused.
func TestExpiredSignatureRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret("carol")))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := sigstore.Payload{Reference: "stagex/core-hello:1.0", Digest: dHello, Timestamp: t0.Unix()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var blob bytes.Buffer
	w, err := openpgp.Sign(&blob, keys[0], nil, &packet.Config{DefaultHash: crypto.SHA256, SigLifetimeSecs: 60, Time: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tip := f.on(f.base, "carol", "sign by carol", add(hello3, blob.Bytes()))
	res := f.check(f.base, tip)
	if res.OK() || !strings.Contains(describe(res), "the signature expired on") {
		t.Errorf("an expired signature was not refused:%s", describe(res))
	}
}
