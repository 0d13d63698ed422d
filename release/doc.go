// Package release is tally's domain: the trust policy of a signatures
// repository, signing a maintainer's build into it, counting the quorum of
// distinct trusted keys, and cutting and publishing releases.
package release
