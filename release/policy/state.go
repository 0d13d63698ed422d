package policy

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/sigstore"
)

// ErrUntrustedSigner means the signing key is not in the repository's keyring,
// so its signatures would count for nothing.
var ErrUntrustedSigner = errors.New("signing key is not a maintainer key of this repository")

// ErrDetached means HEAD is not on a branch, so there is no branch to move.
var ErrDetached = errors.New("HEAD is detached: check out the signing branch first")

// State is a signatures repository as of one commit: its trust policy, its
// keyring and a read-only snapshot of its tree.
type State struct {
	Repo   *gitstore.Repo
	Branch plumbing.ReferenceName // the branch the commit is the tip of ("" when detached)
	Tip    plumbing.Hash          // the commit (zero for an empty, unborn branch)
	Snap   *gitstore.Snapshot
	Policy Policy
	Keys   *sigstore.Keyring
}

// LoadHead reads the policy and keyring at the tip of the checked-out branch.
func LoadHead(repo *gitstore.Repo) (*State, error) {
	branch, tip, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	return load(repo, branch, tip)
}

// LoadCommit reads the policy and keyring at a given commit.
func LoadCommit(repo *gitstore.Repo, commit plumbing.Hash) (*State, error) {
	return load(repo, "", commit)
}

func load(repo *gitstore.Repo, branch plumbing.ReferenceName, tip plumbing.Hash) (*State, error) {
	if tip.IsZero() {
		return nil, fmt.Errorf("%w: the branch has no commits yet", ErrNoPolicy)
	}
	snap, err := repo.Snapshot(tip)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", tip, err)
	}
	st := &State{Repo: repo, Branch: branch, Tip: tip, Snap: snap}
	data, err := snap.ReadFileMax(PolicyFile, MaxPolicySize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoPolicy
	}
	if errors.Is(err, gitstore.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPolicy, PolicyFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", PolicyFile, err)
	}
	if st.Policy, err = ParsePolicy(data); err != nil {
		return nil, err
	}
	keyData, err := snap.ReadFileMax(st.Policy.Keyring, sigstore.MaxKeyringSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading keyring %s: %v", ErrBadPolicy, st.Policy.Keyring, err)
	}
	if st.Keys, err = sigstore.ReadKeyring(keyData); err != nil {
		return nil, fmt.Errorf("%w: keyring %s: %v", ErrBadPolicy, st.Policy.Keyring, err)
	}
	if err := CheckThreshold(st.Policy.Threshold, len(st.Keys.Keys())); err != nil {
		return nil, err
	}
	return st, nil
}
