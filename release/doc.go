// Package release holds tally's verbs over a signatures repository: Init,
// Sign, Status and Verify, Merge, Sync and Repair, NewPlan, Cut, Publish and
// ExportPolicy, each with its options and result. cmd/tally calls one of
// them per command.
//
// Start with Status (the quorum report of HEAD) or Verify (the pass/fail
// gate, optionally comparing local builds and registry images). The parts
// they are made of are packages of their own:
//
//   - release/policy: tally.toml, the keyring, the repository layout and
//     the classifier of repository paths (LoadHead, ParsePolicy, ClassifyPath);
//   - release/record: build records and the builder environment;
//   - release/quorum: the evaluation of every signature file, its cache,
//     the counting of the quorum and the Report;
//   - release/merge: Merge, Sync and Repair, which bring lines of signing
//     work together by the merge rules (release's Merge, Sync, SyncAndPush,
//     Repair and ResolveSource are the same functions);
//   - release/registry: the registry client (verify's reader, publish's
//     targets); nothing else in tally talks to a registry.
package release
