package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// ErrNothingToApprove means the proposal does not change the trust policy,
// or changes it in a way that needs no approvals.
var ErrNothingToApprove = errors.New("nothing to approve")

// ApproveOptions says which change of the trust policy to approve.
type ApproveOptions struct {
	// Proposal is a commit whose tree holds the proposed tally.toml and
	// keyring.
	Proposal plumbing.Hash
	// From is the commit whose trust policy is the current one: the policy
	// the proposal will replace. Zero means HEAD.
	From plumbing.Hash
	// Signer is the approving maintainer's key; it also signs the commit.
	Signer sigstore.Signer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ApproveResult says what Approve did.
type ApproveResult struct {
	// ID names the statement: approvals/<ID>/.
	ID string `json:"id"`
	// Statement is the text approved.
	Statement string `json:"statement"`
	// NeedsApproval says why the change needs approvals.
	NeedsApproval []string `json:"needs_approval"`
	// Signer is the approving key's primary fingerprint.
	Signer string `json:"signer"`
	// Path is the approval file.
	Path string `json:"path"`
	// Already is true when this key had approved the statement before;
	// nothing was committed then.
	Already bool `json:"already,omitempty"`
	// Approvers are the maintainers whose approvals HEAD holds now.
	Approvers []string `json:"approvers"`
	// Threshold is how many approvals the change needs.
	Threshold int `json:"threshold"`
	// Commit and Branch are the commit made and the branch moved.
	Commit string `json:"commit,omitempty"`
	Branch string `json:"branch,omitempty"`
}

// Approve records the signer's approval of the change from the trust policy
// at opts.From to the one at opts.Proposal: it writes
// approvals/<id>/statement (when missing) and approvals/<id>/<FPR>.asc, a
// detached signature of the statement, and commits them on the checked-out
// branch in a commit signed by the same key. Each maintainer approves on
// their own; approving twice commits nothing.
func Approve(ctx context.Context, repo *gitstore.Repo, opts ApproveOptions) (*ApproveResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	unlock, err := repo.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data

	branch, head, err := repo.Head()
	if err != nil {
		return nil, err
	}
	if branch == "" {
		return nil, policy.ErrDetached
	}
	from := opts.From
	if from.IsZero() {
		from = head
	}
	var sts states
	load := func(commit plumbing.Hash, what string) (*policyState, error) {
		if commit.IsZero() {
			return nil, fmt.Errorf("%s: %w: the branch has no commits yet", what, policy.ErrNoPolicy)
		}
		snap, err := repo.Snapshot(commit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		s, err := sts.load(snap)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", what, short(commit), err)
		}
		return s, nil
	}
	cur, err := load(from, "the current trust policy")
	if err != nil {
		return nil, err
	}
	proposed, err := load(opts.Proposal, "the proposed trust policy")
	if err != nil {
		return nil, err
	}
	st, need := changeStatement(cur, proposed, from)
	if st.From == st.To {
		return nil, fmt.Errorf("%w: %s holds the same trust policy as %s", ErrNothingToApprove, short(opts.Proposal), short(from))
	}
	if len(need) == 0 {
		return nil, fmt.Errorf("%w: the change (%s) only raises the threshold or refreshes keys with what their holders made, which needs no approvals: commit it signed by a maintainer",
			ErrNothingToApprove, strings.Join(st.Changes, "; "))
	}
	fpr := opts.Signer.Fingerprint()
	key, ok := cur.keys.Key(fpr)
	if !ok {
		return nil, fmt.Errorf("%w: %s (only the current maintainers approve changes of the trust policy)", policy.ErrUntrustedSigner, fpr)
	}
	now := opts.Now().UTC().Truncate(time.Second)
	if ok, why := cur.keys.ValidAt(fpr, now); !ok {
		return nil, fmt.Errorf("signing key %s cannot approve now: %s", fpr, why)
	}
	headSnap, err := repo.Snapshot(head)
	if err != nil {
		return nil, err
	}
	c := newChecker(repo, Options{Now: func() time.Time { return now }})
	// Another maintainer may have written the statement already, based on
	// an earlier commit with the same policy: sign that one, so that every
	// approval of this change is in one directory.
	if prev, err := c.existingStatement(headSnap, cur, proposed, from); err != nil {
		return nil, err
	} else if prev != nil {
		st = *prev
	}
	id, text := st.ID(), st.Marshal()
	res := &ApproveResult{ID: id, Statement: string(text), NeedsApproval: need, Signer: fpr,
		Path: approvalPath(id, fpr), Threshold: cur.policy.Threshold, Branch: branch.Short()}

	var changes []gitstore.Change
	if _, err := headSnap.Stat(res.Path); err == nil {
		res.Already = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else {
		sig, err := opts.Signer.SignDetached(text)
		if err != nil {
			return nil, fmt.Errorf("signing the approval: %w", err)
		}
		if _, err := sigstore.VerifyDetached(cur.entities, text, sig, now); err != nil {
			return nil, fmt.Errorf("the approval signature the key made does not verify: %v", err)
		}
		if _, err := headSnap.Stat(statementPath(id)); errors.Is(err, fs.ErrNotExist) {
			changes = append(changes, gitstore.Change{Path: statementPath(id), Data: text})
		}
		changes = append(changes, gitstore.Change{Path: res.Path, Data: sig})
		paths := make([]string, len(changes))
		for i, ch := range changes {
			paths[i] = ch.Path
		}
		if err := repo.CheckPaths(paths); err != nil {
			return nil, err
		}
		// The commit's time is taken after signing, which a smart card
		// may take its time over.
		who := identity(key.Name, opts.Now().UTC().Truncate(time.Second))
		hash, err := repo.Commit(gitstore.CommitRequest{
			Branch:    branch,
			Parents:   []plumbing.Hash{head},
			Changes:   changes,
			Message:   fmt.Sprintf("approve trust policy change %s by %s\n\n%s", id[:12], who.Name, text),
			Author:    who,
			Committer: who,
			Sign:      opts.Signer.SignDetached,
			Context:   ctx,
		})
		if err != nil {
			return nil, err
		}
		res.Commit = hash.String()
		head = hash
	}
	// Who has approved so far, as HEAD holds it, for the change made on
	// top of HEAD; with From, for the change made on top of From (a
	// proposal branch: the proposal and the approvals after From).
	snap, err := repo.Snapshot(head)
	if err != nil {
		return nil, err
	}
	changeAt := head
	if !opts.From.IsZero() {
		changeAt = opts.From
	}
	j := &job{parent: cur, newTree: snap, when: now, parentCommit: changeAt}
	if res.Approvers, _, err = c.approvers(j, cur, proposed); err != nil {
		return nil, err
	}
	return res, nil
}

// existingStatement returns the statement of the change from one policy to
// the other that t already holds and that may approve it on top of commit
// at, or nil.
func (c *checker) existingStatement(t tree, from, to *policyState, at plumbing.Hash) (*Statement, error) {
	dirs, err := t.List(policy.ApprovalsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		e, err := t.Stat(policy.ApprovalsDir + "/" + d.Name + "/" + policy.StatementFile)
		if err != nil {
			continue
		}
		data, _, ok, err := readBlobMax(t, e.Hash, maxStatementSize)
		if err != nil || !ok {
			continue
		}
		st, err := ParseStatement(data)
		if err != nil || st.Version != 2 || st.From != from.digest() || st.To != to.digest() {
			continue
		}
		if want, _ := changeStatement(from, to, plumbing.NewHash(st.Base)); !bytes.Equal(want.Marshal(), data) {
			continue
		}
		if ok, err := c.baseValid(plumbing.NewHash(st.Base), at, from); err != nil {
			return nil, err
		} else if ok {
			return &st, nil
		}
	}
	return nil, nil
}

// identity is policy.Author: a key's user ID ("Name (comment) <email>") as
// a git identity.
func identity(userID string, when time.Time) object.Signature { return policy.Author(userID, when) }
