// Package buildout reads the OCI image layouts that a reproducible build left
// in its output directory, one layout per package, and lists the per-platform
// image manifest digests that maintainers sign.
//
// Start with Read: it reads out/<stage>-<name>/ for every package and returns
// one Image per layout, each with its tag and its per-platform Manifests.
// ReadFS reads a single layout from any fs.FS. ReadDigestList and
// WriteDigestList handle the "<64-hex> <name>" digest lists a source tree
// commits.
//
// A digest here is always the SHA-256 of the exact manifest bytes in the
// layout's blob store, checked against the digest and size its index
// descriptor claims; a manifest is never re-serialised. Nothing is skipped
// silently: BuildKit attestation manifests are the only entries left out, and
// anything else that is not an image index or an image manifest is an error.
// Sizes (MaxManifestSize, MaxLayoutBytes) and nesting (MaxIndexDepth) are
// bounded, so a hostile layout cannot exhaust memory.
//
// Errors for a layout are *LayoutError; branch on their causes with
// errors.Is: ErrNotLayout, ErrNoTag, ErrCorrupt, ErrAmbiguous, ErrBadName.
package buildout
