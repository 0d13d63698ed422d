// Package gitstore keeps a signatures repository in git with go-git, at the
// object level: it reads snapshots of commits without a checkout, writes
// commits that touch only the changed trees, moves branches atomically and
// keeps a checked-out working tree in step with the branch.
//
// Start with Open (or Init, or NewMemory in tests), then Snapshot to read
// and Commit to write:
//
//	r, err := gitstore.Open(dir)
//	...
//	defer r.Close()
//	unlock, err := r.Lock(ctx) // one writer at a time
//	...
//	_, tip, err := r.Head()
//	h, err := r.Commit(gitstore.CommitRequest{
//		Branch:  "main",
//		Parents: []plumbing.Hash{tip},
//		Changes: []gitstore.Change{{Path: "stagex/core-gcc@sha256=.../signature-3", Data: sig}},
//		Message: "sign stagex/core-gcc",
//		Author:  who,
//		Sign:    signer.SignDetached,
//	})
//
// # Concurrency
//
// A Repo is safe for concurrent use. Reads (Snapshot, ReadFile, Walk, Blob,
// Diff) run in parallel: packs are mapped read-only into memory (as git
// does; mmap.go, Linux and other Unix systems), so readers share them without
// a system call or a lock on a file position, and trees and blobs are decoded once per object id and shared by every
// Snapshot. Writes never disturb readers: objects are immutable, and a
// branch moves only once everything it points to is stored.
//
// Against other processes, Commit and CreateTag follow git's own locking:
// a reference moves by renaming an exclusively created name.lock file over
// it, and the index is rewritten through index.lock, so git and tally never
// see each other's half-written files or lose each other's updates. Lock
// adds a repository-wide lock for tally's read-decide-write sequences.
//
// # Working tree
//
// When the branch a Commit moves is checked out, only the changed paths are
// checked (CheckPaths: nothing uncommitted may be overwritten) and then
// written, each atomically, with their index entries filled so that git
// status shows a clean tree without reading the files again. The index is
// written without extensions (go-git writes none); git rebuilds its caches.
//
// # Crashes
//
// A process killed at any moment leaves the repository readable by git and
// the branch at its old or its new commit. Before moving the checked-out
// branch, Commit and SetBranch record their intent (tally/checkout-intent in
// the git directory) while holding index.lock, and every git lock file tally
// takes is recorded, flocked, in tally/locks/. Recover, which a program
// calls once after Open, removes the stale locks of dead tally processes and
// brings the paths an unfinished move touched to HEAD. A Context on the
// request stops a commit before the branch moves (ErrInterrupted), never
// after.
//
// # Files
//
// Commits of many objects are written as one pack (like git's
// transfer.unpackLimit), smaller ones as loose objects. Every object read
// from disk is checked against its id. Trees, commits and pack entries are
// parsed strictly, as git fsck would judge them; malformed objects give
// errors wrapping ErrBadObject.
package gitstore
