// Package hooks guards a signatures repository: it judges pushed commits
// against the repository's rules and installs the git hooks that run that
// judgement.
//
// Start with Check (a range, as tally check and CI judge it) or CheckPush
// (a push, as the server hook sees it). Both judge references and commit
// signatures first and content only when those pass; each commit against
// its first parent and, for a merge, against every parent the updated
// reference already published; and finally that the new tip contains
// everything the old tip published. Approve records a maintainer's approval
// of a trust policy change, as a Statement bound to one transition.
package hooks
