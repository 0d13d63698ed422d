// Package policy is the trust policy of a signatures repository and the
// repository's layout: tally.toml (Policy, ParsePolicy), the keyring it
// names, the state of both at one commit (State, LoadHead, LoadCommit), the
// names of the top-level directories (builds/, releases/, approvals/) and
// the one classifier of repository paths (ClassifyPath), which both the
// verbs of release and the guard in hooks use. The verbs that commit on the
// branch start with LockHead (the repository's lock and the state of the
// checked-out branch) and sign as Author (a key's user ID as a git identity).
//
// Start with LoadHead: the policy and keyring of the checked-out branch.
package policy
