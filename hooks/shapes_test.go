package hooks

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// shape is a history shape, or one of the ways one maintainer acting alone
// got past the guard (issue 16). build returns the published tip (pushed
// and accepted first) and the new tip; the new tip is accepted when reason
// is "", else refused with a refusal of rule whose reason holds reason.
type shape struct {
	name   string
	build  func(t testing.TB, f *fixture) (published, tip plumbing.Hash)
	rule   Rule
	reason string
}

var (
	daveFpr   = testkeys.Fingerprint("dave")
	carolFpr  = testkeys.Fingerprint("carol")
	dCoreA    = digest("core-a")
	dCoreB    = digest("core-b")
	coreA1    = sigPath("core-a", dCoreA, 1)
	coreB1    = sigPath("core-b", dCoreB, 1)
	keyringAt = "stagex-keyring.pgp"
)

func sigA(t testing.TB, key string) edit {
	return add(coreA1, signature(t, key, "core-a", "1.0", dCoreA))
}

func sigB(t testing.TB, key string) edit {
	return add(coreB1, signature(t, key, "core-b", "1.0", dCoreB))
}

// keyringWith is the keyring of alice, bob and carol plus the given keys.
func keyringWith(t testing.TB, extra ...*openpgp.Entity) []byte {
	t.Helper()
	all := keyringOf(t, "alice", "bob", "carol")
	for _, e := range extra {
		var b bytes.Buffer
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
		all = append(all, b.Bytes()...)
	}
	kr, err := sigstore.ReadKeyring(all)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := kr.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func daveEntity(t testing.TB) *openpgp.Entity {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret("dave")))
	if err != nil {
		t.Fatal(err)
	}
	return el[0]
}

// withDave publishes dave's admission, approved by alice and bob.
func withDave(t testing.TB, f *fixture) plumbing.Hash {
	change := f.on(f.base, "alice", "add dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
	return approve(t, f, f.base, change, "alice", "bob")
}

// approveV1 adds approvals in the old statement format (version 1: no
// repository, no base commit) of the change from the policy at from to the
// one at tip.
func approveV1(t testing.TB, f *fixture, from, tip plumbing.Hash, keys ...string) plumbing.Hash {
	t.Helper()
	repo := f.open()
	var sts states
	load := func(h plumbing.Hash) *policyState {
		snap, _ := repo.Snapshot(h)
		s, err := sts.load(snap)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	st, _ := changeStatement(load(from), load(tip), from)
	st.Version = 1
	edits := []edit{add(statementPath(st.ID()), st.Marshal())}
	for _, k := range keys {
		sig, err := signer(t, k).SignDetached(st.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		edits = append(edits, add(approvalPath(st.ID(), testkeys.Fingerprint(k)), sig))
	}
	return f.on(tip, keys[0], "approvals (v1)", edits...)
}

var shapes = []shape{
	// Issue 16, 1: a merge whose first parent is behind the tip.
	{name: "first parent behind the tip drops every signature", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		b := f.on(f.init, "alice", "nothing")
		return f.base, f.commit("alice", "merge", []plumbing.Hash{b, f.base})
	}, rule: RuleAppendOnly, reason: "compared with its published parent"},
	{name: "first parent behind the tip, keeping everything", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		b := f.on(f.init, "carol", "carol signs core-a", sigA(t, "carol"))
		return f.base, f.commit("alice", "merge", []plumbing.Hash{b, f.base}, f.filesOf(f.base)...)
	}},
	{name: "first parent before an approved key removal restores the key", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		removal := f.on(f.base, "alice", "remove carol", add(keyringAt, keyringOf(t, "alice", "bob")))
		published := approve(t, f, f.base, removal, "alice", "bob")
		b := f.on(f.base, "alice", "an old line")
		// Everything published is kept, but the keyring is the old one.
		return published, f.commit("alice", "merge", []plumbing.Hash{b, published}, f.filesOf(published, keyringAt)...)
	}, rule: RulePolicy, reason: "adds key " + carolFpr},
	{name: "octopus merge with the published parent last drops files", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		a := f.on(f.init, "carol", "core-a", sigA(t, "carol"))
		b := f.on(f.init, "bob", "core-b", sigB(t, "bob"))
		return f.base, f.commit("alice", "octopus", []plumbing.Hash{a, b, f.base}, sigB(t, "bob"))
	}, rule: RuleAppendOnly, reason: "deleted: signature files are never removed"},
	{name: "octopus merge of two maintainers' lines", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		a := f.on(f.base, "carol", "carol", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
		b := f.on(f.base, "bob", "core-b", sigB(t, "bob"))
		return f.base, f.commit("alice", "octopus", []plumbing.Hash{f.base, a, b}, add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)), sigB(t, "bob"))
	}},
	{name: "criss-cross merges", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		x := f.on(f.base, "carol", "core-a", sigA(t, "carol"))
		y := f.on(f.base, "bob", "core-b", sigB(t, "bob"))
		xm := f.commit("carol", "merge y", []plumbing.Hash{x, y}, sigB(t, "bob"))
		ym := f.commit("bob", "merge x", []plumbing.Hash{y, x}, sigA(t, "carol"))
		return f.base, f.commit("alice", "merge both", []plumbing.Hash{xm, ym})
	}},
	{name: "criss-cross merges through a line from the root drop files", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		a := f.on(f.base, "carol", "core-a", sigA(t, "carol"))
		b := f.on(f.init, "bob", "core-b", sigB(t, "bob"))
		xm := f.commit("carol", "merge b", []plumbing.Hash{a, b}, sigB(t, "bob"))
		ym := f.commit("bob", "merge a", []plumbing.Hash{b, a}, sigA(t, "carol"))
		// No merge has the published tip as a parent; only the tip's
		// containment sees what ym dropped.
		return f.base, f.commit("alice", "merge both", []plumbing.Hash{ym, xm})
	}, rule: RuleAppendOnly, reason: "the new tip compared with the published"},
	{name: "merge of an unrelated branch sharing the root", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		side := f.on(f.init, "carol", "core-a on a branch of its own", sigA(t, "carol"))
		return f.base, f.commit("alice", "merge", []plumbing.Hash{f.base, side}, sigA(t, "carol"))
	}},
	{name: "unrelated branch sharing the root taken as the tip", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		side := f.on(f.init, "carol", "core-a on a branch of its own", sigA(t, "carol"))
		return f.base, f.commit("alice", "merge", []plumbing.Hash{side, f.base})
	}, rule: RuleAppendOnly, reason: "compared with its published parent"},
	{name: "revert of a published signature", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		p := f.on(f.base, "carol", "core-a", sigA(t, "carol"))
		return p, f.on(p, "alice", "Revert \"core-a\"", del(coreA1))
	}, rule: RuleAppendOnly, reason: "deleted: signature files are never removed"},
	{name: "a merge of two new lines brings back a removed key", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		removal := f.on(f.base, "alice", "remove carol", add(keyringAt, keyringOf(t, "alice", "bob")))
		published := approve(t, f, f.base, removal, "alice", "bob")
		a := f.on(published, "alice", "core-a", sigA(t, "alice"))
		b := f.on(f.base, "alice", "an old line")
		// Neither parent of the tip is published: only the tip's
		// containment sees that the policy is not the published one.
		return published, f.commit("alice", "merge", []plumbing.Hash{b, a}, f.filesOf(a, keyringAt)...)
	}, rule: RulePolicy, reason: "adds key " + carolFpr},
	{name: "a merge drops a line of a published build record", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		b := f.on(f.init, "alice", "an old line")
		rec := policy.BuildRecordPath(recordRel, aliceFpr)
		return f.base, f.commit("alice", "merge", []plumbing.Hash{b, f.base}, append(f.filesOf(f.base, rec), add(rec, recordFile(t, nil, aliceFpr, dMulti)))...)
	}, rule: RuleAppendOnly, reason: "a line of the published build record is gone"},
	{name: "a merge changes a published release manifest", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		published := f.on(f.base, "alice", "release", add("releases/2026.11.0/digests.txt", []byte("x\n")))
		b := f.on(f.init, "alice", "an old line")
		return published, f.commit("alice", "merge", []plumbing.Hash{b, published}, append(f.filesOf(published, "releases/2026.11.0/digests.txt"), add("releases/2026.11.0/digests.txt", []byte("y\n")))...)
	}, rule: RuleAppendOnly, reason: "compared with its published parent "},
	// Issue 16, 2: approvals replayed.
	{name: "revert of an approved key removal replays its approvals", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		added := withDave(t, f)
		removal := f.on(added, "alice", "remove dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol")))
		published := approve(t, f, added, removal, "alice", "bob")
		// git revert gives back the bytes the first, approved, change made.
		return published, f.on(published, "alice", "Revert \"remove dave\"", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
	}, rule: RulePolicy, reason: "adds key " + daveFpr + ", which needs approvals by 2 current maintainer(s); it has none"},
	{name: "revert of an approved key removal with fresh approvals", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		added := withDave(t, f)
		removal := f.on(added, "alice", "remove dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol")))
		published := approve(t, f, added, removal, "alice", "bob")
		revert := f.on(published, "alice", "Revert \"remove dave\"", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
		return published, approve(t, f, published, revert, "bob", "carol")
	}},
	{name: "replayed approvals on a line from before the removal", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		added := withDave(t, f)
		removal := f.on(added, "alice", "remove dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol")))
		published := approve(t, f, added, removal, "alice", "bob")
		// From the base, where the first statement's policy held, dave comes
		// back with the first approvals (in the tree), then the published
		// tip is merged in with everything it holds but the keyring.
		again := f.on(f.base, "alice", "add dave again", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
		again = f.on(again, "alice", "the old approvals", f.filesOf(added, keyringAt)...)
		return published, f.commit("alice", "merge", []plumbing.Hash{again, published}, f.filesOf(published, keyringAt)...)
	}, rule: RulePolicy, reason: "adds key " + daveFpr},
	{name: "approvals in the version 1 format", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		change := f.on(f.base, "alice", "add dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
		return f.base, approveV1(t, f, f.base, change, "alice", "bob")
	}, rule: RulePolicy, reason: "adds key " + daveFpr + ", which needs approvals by 2 current maintainer(s); it has none"},
	// Issue 16, 3: key edits.
	{name: "another maintainer strips a signing subkey", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		published := withDave(t, f)
		d := daveEntity(t)
		d.Subkeys = nil
		return published, f.on(published, "alice", "refresh keys", add(keyringAt, keyringWith(t, d)))
	}, rule: RulePolicy, reason: "changes key " + daveFpr + " beyond what its holder adds alone (removes subkey "},
	{name: "another maintainer certifies a key", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		published := withDave(t, f)
		d := daveEntity(t)
		alice, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret("alice")))
		if err != nil {
			t.Fatal(err)
		}
		for name := range d.Identities {
			if err := d.SignIdentity(name, alice[0], &packet.Config{Time: func() time.Time { return t0 }}); err != nil {
				t.Fatal(err)
			}
		}
		return published, f.on(published, "alice", "refresh keys", add(keyringAt, keyringWith(t, d)))
	}, rule: RulePolicy, reason: "adds a certification made by " + aliceFpr},
	{name: "the holder adds a signing subkey", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		published := withDave(t, f)
		d := daveEntity(t)
		if err := d.AddSigningSubkey(&packet.Config{Time: func() time.Time { return t0 }}); err != nil {
			t.Fatal(err)
		}
		return published, f.on(published, "alice", "dave's new subkey", add(keyringAt, keyringWith(t, d)))
	}},
	// Issue 16, 4: slow signers.
	{name: "a commit signed a second after its time", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		f.signLate = time.Second
		defer func() { f.signLate = 0 }()
		return f.base, f.on(f.base, "carol", "sign slowly", sigA(t, "carol"))
	}},
	{name: "a commit signed nine minutes after its time", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		f.signLate = 9 * time.Minute
		defer func() { f.signLate = 0 }()
		return f.base, f.on(f.base, "carol", "sign slowly", sigA(t, "carol"))
	}},
	{name: "a commit signed eleven minutes after its time", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		f.signLate = 11 * time.Minute
		defer func() { f.signLate = 0 }()
		return f.base, f.on(f.base, "carol", "backdated", sigA(t, "carol"))
	}, rule: RuleCommitSignature, reason: "more than the 10m0s allowed for slow signers and clock skew"},
	// Issue 16, 5: a signature by a subkey its holder revoked.
	{name: "a signature by a revoked signing subkey", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		published := withDave(t, f)
		d := daveEntity(t)
		if err := d.RevokeSubkey(&d.Subkeys[0], packet.KeySuperseded, "new card", &packet.Config{Time: func() time.Time { return t0.Add(2 * time.Hour) }}); err != nil {
			t.Fatal(err)
		}
		published = f.on(published, "alice", "dave revoked his subkey", add(keyringAt, keyringWith(t, d)))
		return published, f.on(published, "alice", "dave's late signature", add(coreA1, signature(t, "dave", "core-a", "1.0", dCoreA)))
	}, rule: RuleSignature, reason: "was revoked on"},
	// Issue 16, 6: size before content.
	{name: "an oversized signature file", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		return f.base, f.on(f.base, "alice", "big", add(multi2, make([]byte, sigstore.MaxSignatureSize+1)))
	}, rule: RuleSignature, reason: "more than the 4194304 clients read"},
	{name: "an oversized build record", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		return f.base, f.on(f.base, "alice", "big", add(policy.BuildRecordPath(recordRel, aliceFpr), make([]byte, maxBuildRecordSize+1)))
	}, rule: RuleBuildRecord, reason: "more than the 16777216 tally reads"},
	{name: "an oversized approval", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		id := someStatement.ID()
		return f.base, f.on(f.base, "alice", "big", add(statementPath(id), someStatement.Marshal()), add(approvalPath(id, aliceFpr), make([]byte, sigstore.MaxDetachedSize+1)))
	}, rule: RuleApproval, reason: "more than the 65536 an approval file may have"},
	{name: "an oversized tally.toml", build: func(t testing.TB, f *fixture) (plumbing.Hash, plumbing.Hash) {
		p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 3, Keyring: keyringAt}
		big := append([]byte("# "+strings.Repeat("x", policy.MaxPolicySize)+"\n"), p.Marshal()...)
		return f.base, f.on(f.base, "alice", "raise the threshold, with a long comment", add(policy.PolicyFile, big))
	}, rule: RulePolicy, reason: "more than the 65536 a trust policy may have"},
}

// findShape reports whether res holds the refusal s expects.
func findShape(res *Result, s shape) bool {
	for _, r := range res.Refusals {
		if r.Rule == s.rule && strings.Contains(r.Reason, s.reason) {
			return true
		}
	}
	return false
}

// TestHistoryShapes runs every shape through Check.
func TestHistoryShapes(t *testing.T) {
	t.Parallel()
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			published, tip := s.build(t, f)
			if published != f.base {
				if res := f.check(f.base, published); !res.OK() {
					t.Fatalf("the published tip was refused:%s", describe(res))
				}
			}
			res := f.check(published, tip)
			t.Logf("refused:%s", describe(res))
			switch {
			case s.reason == "" && !res.OK():
				t.Errorf("refused:%s", describe(res))
			case s.reason != "" && !findShape(res, s):
				t.Errorf("want a %s refusal saying %q; got:%s", s.rule, s.reason, describe(res))
			}
		})
	}
}

// TestApprovalsAuditReadsV1: an audit without a clock (tally check
// --at-commit-time) still counts approvals in the version 1 format, and
// says so; a check with a clock never does.
func TestApprovalsAuditReadsV1(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	change := f.on(f.base, "alice", "add dave", add(keyringAt, keyringOf(t, "alice", "bob", "carol", "dave")))
	tip := approveV1(t, f, f.base, change, "alice", "bob")
	res, err := Check(f.open(), f.base, tip, Options{})
	if err != nil || !res.OK() {
		t.Fatalf("the audit refused the v1 approvals: %v%s", err, describe(res))
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "counting version 1 statements") {
		t.Errorf("the audit does not say it counted v1 statements: %q", res.Notes)
	}
}
