package hooks

import (
	"context"
	"errors"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/testkeys"
)

// TestPropose makes the proposal commit and the proposer's approval, then a
// second maintainer's approval on the proposal branch: the guard accepts
// the branch as the update of main. A raised threshold needs no approval.
func TestPropose(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	repo := f.open()
	res, err := Propose(context.Background(), repo, ProposeOptions{
		Add:    []PublicKey{{Source: "dave.pub.asc", Data: testkeys.Public("dave")}},
		Signer: signer(t, "alice"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != f.base.String() || res.Approval == nil || len(res.Approval.Approvers) != 1 || len(res.Changes) != 1 {
		t.Fatalf("proposal: %+v (approval %+v)", res, res.Approval)
	}
	tip, _ := repo.Branch("main")
	if r := f.check(f.base, tip); r.OK() {
		t.Fatal("one approval of 2 was accepted")
	}
	bob, err := Approve(context.Background(), repo, ApproveOptions{Proposal: tip, From: f.base, Signer: signer(t, "bob"), Now: now})
	if err != nil || len(bob.Approvers) != 2 {
		t.Fatalf("bob's approval: %v %+v", err, bob)
	}
	tip, _ = repo.Branch("main")
	if r := f.check(f.base, tip); !r.OK() {
		t.Fatalf("the approved proposal was refused:%s", describe(r))
	}

	before, _ := repo.Branch("main")
	raise, err := Propose(context.Background(), repo, ProposeOptions{Threshold: 3, Signer: signer(t, "bob"), Now: now})
	if err != nil || raise.Approval != nil {
		t.Fatalf("raising the threshold: %v %+v", err, raise)
	}
	if r := f.check(before, plumbing.NewHash(raise.Commit)); !r.OK() {
		t.Errorf("a raised threshold was refused:%s", describe(r))
	}

	for name, opts := range map[string]ProposeOptions{
		"nothing":            {},
		"add one there":      {Add: []PublicKey{{Source: "alice", Data: testkeys.Public("alice")}}},
		"remove a stranger":  {Remove: []string{testkeys.Fingerprint("mallory")}},
		"below threshold":    {Remove: []string{testkeys.Fingerprint("alice"), testkeys.Fingerprint("bob")}},
		"refresh a stranger": {Refresh: []PublicKey{{Source: "mallory", Data: testkeys.Public("mallory")}}},
	} {
		opts.Signer, opts.Now = signer(t, "alice"), now
		if _, err := Propose(context.Background(), repo, opts); !errors.Is(err, ErrBadProposal) {
			t.Errorf("%s: %v, want ErrBadProposal", name, err)
		}
	}
	after, _ := repo.Branch("main")
	if after.String() != raise.Commit {
		t.Errorf("a refused proposal moved main to %s", after)
	}
}
