package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LockFile is the name of the lock file Lock takes in the git directory
// (the common one, for linked working trees).
const LockFile = "tally.lock"

// lockPoll is how often Lock retries a lock held by someone else.
const lockPoll = 50 * time.Millisecond

// Lock takes an exclusive lock on the repository, waiting until ctx is done;
// then it fails with an error wrapping ErrLocked. On disk it is an flock(2)
// on LockFile in the git directory, which the kernel releases if the
// process dies; in memory it is a lock of this Repo. Call unlock to release
// it.
func (r *Repo) Lock(ctx context.Context) (unlock func() error, err error) {
	if r.commonDir == "" {
		select {
		case r.memLock <- struct{}{}:
			return sync.OnceValue(func() error { <-r.memLock; return nil }), nil
		case <-ctx.Done():
			return nil, fmt.Errorf("locking repository: %w: %w", ErrLocked, ctx.Err())
		}
	}
	path := filepath.Join(r.commonDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("locking repository: %w", err)
	}
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return sync.OnceValue(f.Close), nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: held by another process: %w: %w", path, ErrLocked, ctx.Err())
		}
	}
}
