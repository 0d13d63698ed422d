// Package sample writes small, deterministic OCI image layouts shaped like the
// ones a StageX-style build leaves in out/, for tests, benchmarks and the demo.
//
// Start with Write. The same Spec gives the same bytes, and so the same
// digests, on every machine; a different Seed stands for a builder whose
// output diverged. The images are real (go-containerregistry writes them,
// skopeo reads them) but tiny: one gzip layer holding one file.
//
// This is test support, not API: nothing outside tally's tests, the demo and
// the mksample command should depend on it.
package sample
