package release

import (
	"context"
	"time"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
)

// lockRepo is policy.LockRepo: the repository's lock, waiting at most wait.
func lockRepo(ctx context.Context, repo *gitstore.Repo, wait time.Duration) (func() error, error) {
	return policy.LockRepo(ctx, repo, wait)
}

// lockHead is policy.LockHead: the lock and the state of the checked-out
// branch, refusing a detached HEAD.
func lockHead(ctx context.Context, repo *gitstore.Repo, wait time.Duration) (*policy.State, func() error, error) {
	return policy.LockHead(ctx, repo, wait)
}
