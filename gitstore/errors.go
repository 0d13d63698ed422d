package gitstore

import "errors"

var (
	// ErrNotRepository is returned by Open when a path is neither a working
	// tree with a .git directory or file nor a bare repository.
	ErrNotRepository = errors.New("not a git repository")

	// ErrRaced is returned by Commit when the branch no longer points at the
	// expected parent: another writer moved it first. Nothing was moved.
	ErrRaced = errors.New("branch moved concurrently")

	// ErrDirty is returned when writing a path of the working tree would
	// overwrite something that is not committed.
	ErrDirty = errors.New("uncommitted changes in the working tree")

	// ErrLocked is returned when the repository (or one of its references)
	// is locked by another writer for longer than the caller waited.
	ErrLocked = errors.New("repository is locked by another process")

	// ErrTagExists is returned by CreateTag when the tag already exists;
	// tags are never moved.
	ErrTagExists = errors.New("tag already exists")

	// ErrNonFastForward is returned by Push when the remote refused an
	// update that would lose its commits.
	ErrNonFastForward = errors.New("non-fast-forward update rejected")

	// ErrRemoteRejected is returned by Push when the remote refused an
	// update for another reason than losing commits: its hooks (tally's
	// pre-receive: the reasons are the remote's lines), a protected branch,
	// a failed reference update.
	ErrRemoteRejected = errors.New("the remote refused the push")

	// ErrNoRemoteRef is returned by Fetch when the remote has no reference
	// matching a refspec's source (a branch nobody pushed yet).
	ErrNoRemoteRef = errors.New("the remote has no such reference")

	// ErrNoGit is returned by Fetch and Push when the git program, which
	// they run, is not on PATH.
	ErrNoGit = errors.New("git is not installed (not on PATH)")

	// ErrGit is returned by Fetch and Push when git failed for another
	// reason: the remote could not be reached, authentication failed. The
	// error holds git's own words.
	ErrGit = errors.New("git failed")

	// ErrInMemory is returned by operations that need a repository on
	// disk, such as Fetch and Push, on a repository in memory.
	ErrInMemory = errors.New("the repository is in memory, not on disk")

	// ErrUnsafePath is returned for a path that is not clean and relative
	// (empty, absolute, with "." or ".." or empty components, or naming .git)
	// and for file/directory conflicts in a commit.
	ErrUnsafePath = errors.New("unsafe path")

	// ErrBadObject is returned when a git object in the repository is
	// malformed: a tree, commit or tag that git fsck would reject.
	ErrBadObject = errors.New("malformed git object")

	// ErrInterrupted is returned by Commit and SetBranch when their context
	// was done before the branch moved: nothing moved, and the objects
	// already written are unreachable (git gc removes them).
	ErrInterrupted = errors.New("interrupted before the branch moved: nothing was committed")

	// ErrStaleWorktree is returned by Commit, together with the new commit's
	// hash, when the branch moved but bringing the working tree and index up
	// to date failed afterwards.
	ErrStaleWorktree = errors.New("working tree not updated")
)
