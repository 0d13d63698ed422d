// Package merge brings lines of signing work together: Merge joins branches,
// commits or other repositories into the checked-out branch by the merge
// rules (signatures are never lost or rewritten, an incoming signature takes
// the first free number of its directory, one the branch already has is
// dropped, build records merge as a union, other files only when one side
// changed them); Sync replays this clone's unpublished commits onto the
// upstream by the same rules and pushes, retrying a lost race (SyncAndPush
// is what tally sign --push runs); Repair closes the gaps in signature
// numbering that stock clients stop at; ResolveSource names the commit a
// merge source means. Every incoming signature file is judged by
// release/quorum's evaluation (sigstore's one judgement) before it lands.
//
// Start with Merge (or Sync for a clone with an upstream). The assembly, a
// tree under construction over a base snapshot, is the machinery all three
// share. release re-exports these verbs under its own names, so callers of
// the other verbs need only package release.
package merge
