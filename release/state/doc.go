// Package state is tally's rollback and freeze protection: a consumer's
// record of the signatures repository it last verified (its branch tip, its
// trust policy, the trust policies that one superseded), and the check that
// refuses a repository or bundle whose history was rewritten, whose trust
// policy was rolled back, or which has not moved for longer than allowed.
//
// Use Read, then Check before verifying, then Write the State Check returned
// once the verification passed.
package state
