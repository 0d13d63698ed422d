package hooks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
)

func TestApprove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	repo := f.open()
	proposal := f.on(f.base, "carol", "add dave", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "dave")))
	approveBy := func(key string) (*ApproveResult, error) {
		return Approve(context.Background(), repo, ApproveOptions{Proposal: proposal, Signer: signer(t, key), Now: now})
	}
	res, err := approveBy("alice")
	if err != nil {
		t.Fatal(err)
	}
	dave := testkeys.Fingerprint("dave")
	if res.Already || res.Commit == "" || res.Threshold != 2 || len(res.Approvers) != 1 || res.Approvers[0] != aliceFpr ||
		!strings.Contains(res.Statement, "add-key "+dave) || res.NeedsApproval[0] != "adds key "+dave {
		t.Errorf("alice's approval: %+v", res)
	}
	// The approval commit passes the check on its own.
	tip, _ := repo.Branch("main")
	if r := f.check(f.base, tip); !r.OK() {
		t.Errorf("the approval commit was refused:%s", describe(r))
	}
	again, err := approveBy("alice")
	if err != nil || !again.Already || again.Commit != "" {
		t.Errorf("approving twice: %v %+v", err, again)
	}
	res, err = approveBy("bob")
	if err != nil || len(res.Approvers) != 2 {
		t.Fatalf("bob's approval: %v %+v", err, res)
	}
	// The proposal, replayed on top of the approvals, is accepted.
	tip, _ = repo.Branch("main")
	change := f.on(tip, "carol", "add dave", add("stagex-keyring.pgp", keyringOf(t, "alice", "bob", "carol", "dave")))
	if r := f.check(f.base, change); !r.OK() {
		t.Errorf("the approved change was refused:%s", describe(r))
	}

	if _, err := approveBy("mallory"); !errors.Is(err, policy.ErrUntrustedSigner) {
		t.Errorf("mallory approving: %v", err)
	}
	if _, err := Approve(context.Background(), repo, ApproveOptions{Proposal: f.base, Signer: signer(t, "alice"), Now: now}); !errors.Is(err, ErrNothingToApprove) {
		t.Errorf("approving no change: %v", err)
	}
	raise := f.on(f.base, "alice", "raise", policyFiles(t, 3, "alice", "bob", "carol")[0])
	if _, err := Approve(context.Background(), repo, ApproveOptions{Proposal: raise, Signer: signer(t, "alice"), Now: now}); !errors.Is(err, ErrNothingToApprove) {
		t.Errorf("approving a raised threshold: %v", err)
	}
	if _, err := Approve(context.Background(), repo, ApproveOptions{Proposal: f.blob([]byte("x")), Signer: signer(t, "alice"), Now: now}); err == nil {
		t.Errorf("approving a blob")
	}
	if _, err := Approve(context.Background(), repo, ApproveOptions{Proposal: proposal, From: plumbing.ZeroHash, Signer: signer(t, "alice"), Now: now}); err != nil {
		t.Errorf("approving from HEAD explicitly: %v", err)
	}
}
