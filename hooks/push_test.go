package hooks

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/release/policy"
)

func pushCheck(t *testing.T, f *fixture, p Push) *Result {
	t.Helper()
	res, err := CheckPush(f.open(), p, Options{Now: now})
	if err != nil {
		t.Fatalf("CheckPush: %v", err)
	}
	return res
}

func TestCheckPushRefRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	signed := f.on(f.base, "carol", "sign", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	forked := f.on(f.init, "carol", "fork", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	refs := []Ref{{"refs/heads/main", f.base}, {"refs/tags/v1", f.init}, {"refs/heads/scratch", f.init}}
	z := plumbing.ZeroHash
	for _, tc := range []struct {
		name   string
		u      Update
		ok     bool
		reason string
	}{
		{"fast-forward", Update{"refs/heads/main", f.base, signed}, true, ""},
		{"new branch", Update{"refs/heads/release/2026.11.0", z, signed}, true, ""},
		{"new tag", Update{"refs/tags/v2", z, f.base}, true, ""},
		{"force-push", Update{"refs/heads/main", f.base, forked}, false, "non-fast-forward update"},
		{"delete branch", Update{"refs/heads/main", f.base, z}, false, "deleting a protected branch"},
		{"move tag", Update{"refs/tags/v1", f.init, f.base}, false, "tags are never moved"},
		{"delete tag", Update{"refs/tags/v1", f.init, z}, false, "tags are never deleted"},
		{"notes", Update{"refs/notes/commits", z, f.base}, false, "only branches (refs/heads/) and tags (refs/tags/)"},
		{"a blob", Update{"refs/heads/blob", z, f.blob([]byte("x"))}, false, "is not a commit"},
		{"new branch with a bad commit", Update{"refs/heads/evil", z,
			f.on(f.base, "alice", "bad", del(hello1))}, false, "deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := pushCheck(t, f, Push{Refs: refs, Head: f.base, Updates: []Update{tc.u}})
			if res.OK() != tc.ok || !tc.ok && !strings.Contains(describe(res), tc.reason) {
				t.Errorf("ok=%v, want %v (%q):%s", res.OK(), tc.ok, tc.reason, describe(res))
			}
			if !tc.ok && res.Refusals[0].Ref != tc.u.Name {
				t.Errorf("refusal names ref %q, want %q", res.Refusals[0].Ref, tc.u.Name)
			}
		})
	}
}

func TestCheckPushProtectedRefsFromPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2, Keyring: "stagex-keyring.pgp",
		ProtectedRefs: policy.NewNames("refs/heads/main")}
	changed := f.on(f.base, "alice", "protect only main", add(policy.PolicyFile, p.Marshal()))
	head := approve(t, f, f.base, changed, "alice", "bob")
	a := f.on(head, "carol", "a", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	b := f.on(head, "bob", "b", add(multi2, signature(t, "bob", "core-multi", "2.0", dMulti)))
	refs := []Ref{{"refs/heads/main", head}, {"refs/heads/wip", a}}
	res := pushCheck(t, f, Push{Refs: refs, Head: head, Updates: []Update{{"refs/heads/wip", a, b}}})
	if !res.OK() {
		t.Errorf("an unprotected branch may be force-pushed:%s", describe(res))
	}
	res = pushCheck(t, f, Push{Refs: refs, Head: head, Updates: []Update{{"refs/heads/wip", a, plumbing.ZeroHash}}})
	if !res.OK() {
		t.Errorf("an unprotected branch may be deleted:%s", describe(res))
	}
	res = pushCheck(t, f, Push{Refs: refs, Head: head, Updates: []Update{{"refs/heads/main", head, plumbing.ZeroHash}}})
	if res.OK() {
		t.Errorf("main was deleted")
	}
}

func TestCheckPushJudgesOnlyNewCommits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	signed := f.on(f.base, "carol", "sign", add(multi2, signature(t, "carol", "core-multi", "2.0", dMulti)))
	refs := []Ref{{"refs/heads/main", f.base}, {"refs/heads/carol", signed}}
	// A new branch at commits the repository has: nothing to judge.
	res := pushCheck(t, f, Push{Refs: refs, Head: f.base, Updates: []Update{{"refs/heads/copy", plumbing.ZeroHash, signed}}})
	if !res.OK() || res.Commits != 0 {
		t.Errorf("copying a branch judged %d commit(s):%s", res.Commits, describe(res))
	}
	// Two branches sharing new commits: each commit judged once.
	next := f.on(signed, "alice", "more", add(sigPath("core-new", dOther, 1), signature(t, "alice", "core-new", "1", dOther)))
	res = pushCheck(t, f, Push{Refs: refs[:1], Head: f.base, Updates: []Update{
		{"refs/heads/x", plumbing.ZeroHash, next}, {"refs/heads/y", plumbing.ZeroHash, next}}})
	if !res.OK() || res.Commits != 2 || res.Signatures != 2 {
		t.Errorf("judged %d commit(s), %d signature(s):%s", res.Commits, res.Signatures, describe(res))
	}
}

func TestCheckPushBootstrap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res := pushCheck(t, f, Push{Updates: []Update{{"refs/heads/main", plumbing.ZeroHash, f.base}}})
	if !res.OK() || res.Commits != 3 || len(res.Notes) != 1 {
		t.Errorf("the first push: %d commits, notes %q:%s", res.Commits, res.Notes, describe(res))
	}
	// The first push may not bring a bad change after the trust root.
	bad := f.on(f.base, "alice", "bad", del(hello1))
	res = pushCheck(t, f, Push{Updates: []Update{{"refs/heads/main", plumbing.ZeroHash, bad}}})
	if res.OK() {
		t.Errorf("the first push brought a deletion")
	}
	// Once the repository has references, a new root is refused.
	root := f.commit("alice", "another root", nil, policyFiles(t, 1, "mallory")...)
	res = pushCheck(t, f, Push{Refs: []Ref{{"refs/heads/main", f.base}}, Head: f.base,
		Updates: []Update{{"refs/heads/evil", plumbing.ZeroHash, root}}})
	if res.OK() || res.Refusals[0].Rule != RuleTrustRoot {
		t.Errorf("a second trust root was accepted:%s", describe(res))
	}
}
