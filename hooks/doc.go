// Package hooks guards a signatures repository: it judges pushed commits
// against the repository's rules and installs the git hooks that run that
// judgement.
package hooks
