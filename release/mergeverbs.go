package release

import (
	"context"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/sigstore"
)

// The verbs that bring lines of signing work together live in release/merge;
// these are the same functions, types and errors under release's names, so
// callers of the verbs need one package.

// Errors of Merge, Sync and Repair: the same values as release/merge's.
var (
	// ErrConflict is merge.ErrConflict.
	ErrConflict = merge.ErrConflict
	// ErrNoSigner is merge.ErrNoSigner.
	ErrNoSigner = merge.ErrNoSigner
	// ErrBadSource is merge.ErrBadSource.
	ErrBadSource = merge.ErrBadSource
	// ErrNoUpstream is merge.ErrNoUpstream.
	ErrNoUpstream = merge.ErrNoUpstream
	// ErrPublished is merge.ErrPublished.
	ErrPublished = merge.ErrPublished
)

// Why Merge or Sync left an incoming file out (DroppedFile.Reason).
const (
	DropIdentical = merge.DropIdentical
	DropSameKey   = merge.DropSameKey
	DropDeleted   = merge.DropDeleted
	DropPathTaken = merge.DropPathTaken
	DropRefused   = merge.DropRefused
)

// DefaultSyncAttempts is merge.DefaultSyncAttempts.
const DefaultSyncAttempts = merge.DefaultSyncAttempts

type (
	// MergeOptions is merge.MergeOptions.
	MergeOptions = merge.MergeOptions
	// MergeResult is merge.MergeResult.
	MergeResult = merge.MergeResult
	// MergedSource is merge.MergedSource.
	MergedSource = merge.MergedSource
	// MergedFile is merge.MergedFile.
	MergedFile = merge.MergedFile
	// DroppedFile is merge.DroppedFile.
	DroppedFile = merge.DroppedFile
	// RejectedFile is merge.RejectedFile.
	RejectedFile = merge.RejectedFile
	// SyncOptions is merge.SyncOptions.
	SyncOptions = merge.SyncOptions
	// SyncResult is merge.SyncResult.
	SyncResult = merge.SyncResult
	// ReplayedCommit is merge.ReplayedCommit.
	ReplayedCommit = merge.ReplayedCommit
	// Renumbered is merge.Renumbered.
	Renumbered = merge.Renumbered
	// RepairOptions is merge.RepairOptions.
	RepairOptions = merge.RepairOptions
	// RepairResult is merge.RepairResult.
	RepairResult = merge.RepairResult
)

// Merge brings lines of signing work into the checked-out branch: see
// merge.Merge.
func Merge(ctx context.Context, repo *gitstore.Repo, opts MergeOptions) (*MergeResult, error) {
	return merge.Merge(ctx, repo, opts)
}

// ResolveSource resolves a merge source to a commit: see merge.ResolveSource.
func ResolveSource(ctx context.Context, repo *gitstore.Repo, spec string) (plumbing.Hash, error) {
	return merge.ResolveSource(ctx, repo, spec)
}

// Sync replays this clone's unpublished commits onto the upstream and
// pushes: see merge.Sync.
func Sync(ctx context.Context, repo *gitstore.Repo, opts SyncOptions) (*SyncResult, error) {
	return merge.Sync(ctx, repo, opts)
}

// SyncAndPush is what tally sign --push does after signing: see
// merge.SyncAndPush.
func SyncAndPush(ctx context.Context, repo *gitstore.Repo, signer sigstore.Signer, now func() time.Time) (*SyncResult, error) {
	return merge.SyncAndPush(ctx, repo, signer, now)
}

// Repair closes the gaps in the numbering of signature files: see
// merge.Repair.
func Repair(ctx context.Context, repo *gitstore.Repo, opts RepairOptions) (*RepairResult, error) {
	return merge.Repair(ctx, repo, opts)
}
