// Package buildout reads the OCI image layouts that a reproducible build left
// in its output directory, one layout per package, and lists the per-platform
// image manifest digests that maintainers sign.
//
// Start with Read.
package buildout
