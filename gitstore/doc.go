// Package gitstore keeps a signatures repository in git with go-git, at the
// object level: it reads snapshots of commits without a checkout, writes
// commits that touch only the changed trees, moves branches atomically and
// keeps a checked-out working tree in step with the branch.
//
// Start with Open, then Snapshot to read and Commit to write.
package gitstore
