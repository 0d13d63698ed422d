// Package record reads and writes build records, the diff-friendly text
// files (builds/<release>/<FINGERPRINT>.txt) in which a maintainer's tally
// sign runs list what they built, and describes the builder's environment
// for a new run (DescribeRun).
//
// Start with ParseBuildRecord and BuildRecord.Marshal, which round-trip
// byte for byte; BuildRecord.Append adds a run.
package record
