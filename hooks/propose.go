package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// ErrBadProposal means a proposed change of the maintainer keys or the
// threshold cannot be made as asked: a key added twice or already there, a
// key to remove or refresh that is not there, a threshold out of range.
var ErrBadProposal = errors.New("invalid trust policy proposal")

// ProposeOptions says how to change the trust policy of the checked-out
// branch: keys to add, remove or refresh, and the threshold.
type ProposeOptions struct {
	Add       []PublicKey // new maintainers' public keys
	Remove    []string    // primary fingerprints of keys to remove
	Refresh   []PublicKey // new exports of keys in the keyring (new self-signatures, subkeys, revocations)
	Threshold int         // the new M; 0 keeps it
	// Signer is the proposing maintainer's key: it signs the proposal
	// commit and, when the change needs approvals, approves it.
	Signer sigstore.Signer
	Now    func() time.Time // the clock; time.Now when nil
}

// PublicKey is an armored or binary public key and where it came from.
type PublicKey struct {
	Source string // file name, for error messages
	Data   []byte
}

// ProposeResult says what Propose committed.
type ProposeResult struct {
	// Commit is the proposal commit: tally.toml and the keyring as proposed.
	Commit string `json:"commit"`
	// Base is the commit whose trust policy the proposal changes.
	Base   string `json:"base"`
	Branch string `json:"branch"`
	// Changes are the statement's lines: what the proposal changes.
	Changes []string `json:"changes"`
	// Approval is the proposer's own approval, nil when the change needs
	// none (a raised threshold, keys refreshed by their holders).
	Approval *ApproveResult `json:"approval"`
}

// Propose commits a change of the trust policy on the checked-out branch,
// signed by opts.Signer (a current maintainer): the keyring with keys
// added, removed or refreshed, and tally.toml with the new threshold. When
// the change needs approvals it then approves it with the same key (as
// Approve does, from the commit the proposal starts from), so the branch
// holds the proposal and its first approval; the other maintainers add
// theirs with Approve on that branch.
func Propose(ctx context.Context, repo *gitstore.Repo, opts ProposeOptions) (*ProposeResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Add)+len(opts.Remove)+len(opts.Refresh) == 0 && opts.Threshold == 0 {
		return nil, fmt.Errorf("%w: nothing to change", ErrBadProposal)
	}
	res, base, err := propose(ctx, repo, opts)
	if err != nil {
		return nil, err
	}
	proposal := plumbing.NewHash(res.Commit)
	appr, err := Approve(ctx, repo, ApproveOptions{Proposal: proposal, From: base, Signer: opts.Signer, Now: opts.Now})
	switch {
	case errors.Is(err, ErrNothingToApprove):
	case err != nil:
		return nil, fmt.Errorf("proposal %s committed, but approving it failed: %w", short(proposal), err)
	default:
		res.Approval = appr
	}
	return res, nil
}

func propose(ctx context.Context, repo *gitstore.Repo, opts ProposeOptions) (*ProposeResult, plumbing.Hash, error) {
	var zero plumbing.Hash
	unlock, err := repo.Lock(ctx)
	if err != nil {
		return nil, zero, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data
	branch, head, err := repo.Head()
	if err != nil {
		return nil, zero, err
	}
	if branch == "" {
		return nil, zero, policy.ErrDetached
	}
	if head.IsZero() {
		return nil, zero, fmt.Errorf("%w: the branch has no commits yet", policy.ErrNoPolicy)
	}
	snap, err := repo.Snapshot(head)
	if err != nil {
		return nil, zero, err
	}
	var sts states
	cur, err := sts.load(snap)
	if err != nil {
		return nil, zero, err
	}
	now := opts.Now().UTC().Truncate(time.Second)
	fpr := opts.Signer.Fingerprint()
	key, ok := cur.keys.Key(fpr)
	if !ok {
		return nil, zero, fmt.Errorf("%w: %s (only the current maintainers propose changes of the trust policy)", policy.ErrUntrustedSigner, fpr)
	}
	if ok, why := cur.keys.ValidAt(fpr, now); !ok {
		return nil, zero, fmt.Errorf("signing key %s cannot propose now: %s", fpr, why)
	}

	keep := map[string]bool{}
	for _, k := range cur.keys.Keys() {
		keep[k.Fingerprint] = true
	}
	for _, f := range opts.Remove {
		n := strings.ToUpper(strings.ReplaceAll(f, " ", ""))
		if !keep[n] {
			return nil, zero, fmt.Errorf("%w: %s is not a key of the keyring", ErrBadProposal, n)
		}
		delete(keep, n)
	}
	read := func(k PublicKey) (*sigstore.Keyring, error) {
		kr, err := sigstore.ReadKeyring(k.Data)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", k.Source, err)
		}
		for _, issue := range kr.Check(now) {
			if issue.Refuse {
				return nil, fmt.Errorf("key file %s: %w", k.Source, issue)
			}
		}
		return kr, nil
	}
	var extra []byte
	added := map[string]string{}
	for _, k := range opts.Add {
		kr, err := read(k)
		if err != nil {
			return nil, zero, err
		}
		for _, key := range kr.Keys() {
			if _, there := cur.keys.Key(key.Fingerprint); there {
				return nil, zero, fmt.Errorf("%w: key %s (%s) is in the keyring already: tally keys refresh updates it", ErrBadProposal, key.Fingerprint, k.Source)
			}
			if prev, dup := added[key.Fingerprint]; dup {
				return nil, zero, fmt.Errorf("%w: key %s is given twice (%s and %s)", ErrBadProposal, key.Fingerprint, prev, k.Source)
			}
			added[key.Fingerprint] = k.Source
		}
		if err := kr.Serialize(bytesAppender{&extra}); err != nil {
			return nil, zero, err
		}
	}
	for _, k := range opts.Refresh {
		kr, err := read(k)
		if err != nil {
			return nil, zero, err
		}
		for _, key := range kr.Keys() {
			if !keep[key.Fingerprint] {
				return nil, zero, fmt.Errorf("%w: key %s (%s) is not a key of the keyring: tally keys add proposes a new one", ErrBadProposal, key.Fingerprint, k.Source)
			}
			delete(keep, key.Fingerprint) // the new export replaces it
		}
		if err := kr.Serialize(bytesAppender{&extra}); err != nil {
			return nil, zero, err
		}
	}
	fprs := make([]string, 0, len(keep))
	for f := range keep {
		fprs = append(fprs, f)
	}
	slices.Sort(fprs)
	var all []byte
	if kept, _, err := cur.keys.Select(fprs); err != nil {
		return nil, zero, err
	} else if kept != nil {
		if err := kept.Serialize(bytesAppender{&all}); err != nil {
			return nil, zero, err
		}
	}
	all = append(all, extra...)
	if len(all) == 0 {
		return nil, zero, fmt.Errorf("%w: the keyring would hold no keys", ErrBadProposal)
	}
	keys, err := sigstore.ReadKeyring(all)
	if err != nil {
		return nil, zero, fmt.Errorf("%w: the proposed keyring: %v", ErrBadProposal, err)
	}
	p := cur.policy
	if opts.Threshold != 0 {
		p.Threshold = opts.Threshold
	}
	if err := policy.CheckThreshold(p.Threshold, len(keys.Keys())); err != nil {
		return nil, zero, fmt.Errorf("%w: %v", ErrBadProposal, err)
	}
	var keyring bytes.Buffer
	if err := keys.Serialize(&keyring); err != nil {
		return nil, zero, err
	}
	changes := []gitstore.Change{{Path: policy.PolicyFile, Data: p.Marshal()}, {Path: p.Keyring, Data: keyring.Bytes()}}
	if err := repo.CheckPaths([]string{policy.PolicyFile, p.Keyring}); err != nil {
		return nil, zero, err
	}
	next := &policyState{policy: p, keys: keys, policyData: changes[0].Data, keyringData: keyring.Bytes()}
	for _, k := range keys.Keys() {
		e, _ := keys.Entity(k.Fingerprint)
		next.entities = append(next.entities, e)
	}
	st, _ := changeStatement(cur, next, head)
	if st.From == st.To {
		return nil, zero, fmt.Errorf("%w: the trust policy would not change", ErrBadProposal)
	}
	who := identity(key.Name, opts.Now().UTC().Truncate(time.Second))
	hash, err := repo.Commit(gitstore.CommitRequest{
		Branch:    branch,
		Parents:   []plumbing.Hash{head},
		Changes:   changes,
		Message:   "propose: " + strings.Join(st.Changes, "; ") + "\n",
		Author:    who,
		Committer: who,
		Sign:      opts.Signer.SignDetached,
	})
	if err != nil {
		return nil, zero, err
	}
	return &ProposeResult{Commit: hash.String(), Base: head.String(), Branch: branch.Short(), Changes: st.Changes}, head, nil
}

// bytesAppender appends what is written to a byte slice.
type bytesAppender struct{ b *[]byte }

func (a bytesAppender) Write(p []byte) (int, error) {
	*a.b = append(*a.b, p...)
	return len(p), nil
}
