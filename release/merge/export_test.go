package merge

import (
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// What the external tests (package merge_test) read of the internals.

// Replayed is the result of Replay.
type Replayed = replayed

// Tip is the new tip of a replay.
func (r *replayed) Tip() plumbing.Hash { return r.tip }

// Commits are the replayed commits.
func (r *replayed) Commits() []ReplayedCommit { return r.commits }

// Renumbered are the signatures a replay moved.
func (r *replayed) Renumbered() []Renumbered { return r.renumbered }

// Dropped are the files a replay left out.
func (r *replayed) Dropped() []DroppedFile { return r.dropped }

var (
	Replay              = replay
	Short               = short
	IsRecord            = isRecord
	SignatureNumber     = signatureNumber
	LooksLikeRepository = looksLikeRepository
)

// VerifyTime is the wall time a merge spent in signature checks.
func VerifyTime(res *MergeResult) time.Duration { return res.verifyTime }

// WithBeforePush returns opts with a hook that runs between the replay and
// the push of each attempt.
func WithBeforePush(opts SyncOptions, hook func(attempt int)) SyncOptions {
	opts.beforePush = hook
	return opts
}
