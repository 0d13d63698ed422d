package buildout

import (
	"errors"
	"fmt"
)

// Sentinel causes of a LayoutError; test for them with errors.Is.
var (
	// ErrNotLayout means the directory is not an OCI image layout: it has no
	// oci-layout or index.json file, or does not exist.
	ErrNotLayout = errors.New("not an OCI image layout")
	// ErrNoTag means the layout's index.json carries no usable
	// org.opencontainers.image.ref.name annotation, so there is no tag to
	// sign the image under.
	ErrNoTag = errors.New("no image tag")
	// ErrCorrupt means the layout cannot be trusted as written: malformed
	// JSON, a missing or truncated blob, a digest or size that does not
	// match, an unknown media type, nesting too deep, a limit exceeded, or a
	// manifest that is not an image manifest.
	ErrCorrupt = errors.New("corrupt image layout")
	// ErrAmbiguous means the layout does not say unambiguously which image
	// to sign: index.json entries carry different tags, or two different
	// manifests claim the same platform.
	ErrAmbiguous = errors.New("ambiguous image layout")
	// ErrBadName means the layout's directory name cannot be a repository
	// name component (lower-case letters, digits and separators . _ __ -).
	ErrBadName = errors.New("invalid image name")
	// ErrDigestList means a digest list is not in the strict
	// "<64-hex> <name>" line format.
	ErrDigestList = errors.New("malformed digest list")
)

// LayoutError is the error for one image layout that could not be read.
// Err wraps one of ErrNotLayout, ErrNoTag, ErrCorrupt, ErrAmbiguous or
// ErrBadName, or an I/O error.
type LayoutError struct {
	// Dir is the layout directory (for ReadFS, the image name).
	Dir string
	// Err says what is wrong.
	Err error
}

// Error returns the directory followed by the cause.
func (e *LayoutError) Error() string {
	return e.Dir + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is(err, ErrCorrupt) works.
func (e *LayoutError) Unwrap() error {
	return e.Err
}

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
