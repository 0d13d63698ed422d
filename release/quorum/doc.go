// Package quorum counts the quorum: it judges every signature file of one
// commit (Evaluate, in parallel, with a VerifyCache in the git directory),
// then counts distinct trusted primary keys per digest, per image and
// platform (Evaluation.Tally, in count.go) into a Report, whose JSON is a
// contract.
//
// Start with Evaluate on a policy.State, then Tally with a Scope (a release,
// image names, or the whole repository).
package quorum
