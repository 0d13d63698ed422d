// Package interop helps tests drive the real tools that tally must work
// with: git, gpg, skopeo and the docker-registry (distribution) server.
//
// Start with [Require]: it skips a test loudly when a tool is missing from
// PATH, and fails it instead when the CI environment variable is set, so CI
// can never pass by skipping. The other helpers give each test an isolated
// environment ([Command], [Run], [Git], [GPGHome]), a registry on loopback
// ([StartRegistry]) and a consumer's view of a signed image ([WritePolicy],
// [WriteRegistriesD], [SkopeoCopy]).
//
// This package is test support: it imports testing and is meant to be
// imported only from _test.go files. Every helper registers its own cleanup.
package interop
