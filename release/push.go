package release

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
)

// ErrNoUpstream means the branch has no upstream to push to.
var ErrNoUpstream = errors.New("the branch has no upstream")

// Push pushes branch to its upstream (branch.<name>.remote and .merge in the
// repository's git config). A plain push: when the remote has moved, the
// error wraps gitstore.ErrNonFastForward and nothing on the remote changes.
func Push(ctx context.Context, repo *gitstore.Repo, branch string) error {
	ref := plumbing.NewBranchReferenceName(branch)
	remote, merge, err := repo.Upstream(ref)
	if err != nil {
		return fmt.Errorf("finding the upstream of %s: %w", branch, err)
	}
	if remote == "" || merge == "" {
		return fmt.Errorf("%w: %s (set one with: git branch --set-upstream-to=origin/%s %s)", ErrNoUpstream, branch, branch, branch)
	}
	if err := repo.Push(ctx, remote, ref.String()+":"+merge.String()); err != nil {
		return fmt.Errorf("pushing %s to %s: %w", branch, remote, err)
	}
	return nil
}
