package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tally-sig/tally/gitstore"
)

// LockRepo takes the repository's lock, waiting at most wait (0: as long
// as ctx allows).
func LockRepo(ctx context.Context, repo *gitstore.Repo, wait time.Duration) (func() error, error) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	unlock, err := repo.Lock(ctx)
	if err != nil && wait > 0 && errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("waited %s: %w", wait, err)
	}
	return unlock, err
}

// LockHead locks the repository (waiting at most wait, when positive) and
// loads the state of the checked-out branch, refusing a detached HEAD: what
// every command that commits on the branch starts with. The caller releases
// the lock with unlock.
func LockHead(ctx context.Context, repo *gitstore.Repo, wait time.Duration) (st *State, unlock func() error, err error) {
	unlock, err = LockRepo(ctx, repo, wait)
	if err != nil {
		return nil, nil, err
	}
	st, err = LoadHead(repo)
	if err == nil && st.Branch == "" {
		err = ErrDetached
	}
	if err != nil {
		unlock() //nolint:errcheck // releasing a flock cannot lose data
		return nil, nil, err
	}
	return st, unlock, nil
}
