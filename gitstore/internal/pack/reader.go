package pack

import (
	"errors"

	"github.com/go-git/go-git/v5/plumbing"
)

// MaxObjectSize bounds the objects read into memory. Signatures are a few
// hundred bytes and build records a few kilobytes; anything near this size
// is not something tally wrote.
const MaxObjectSize = 256 << 20

// ErrBadObject is wrapped by the errors for a damaged pack, index or loose
// object: one that does not parse, does not inflate to the size its header
// gives, or whose contents do not hash to its id. gitstore.ErrBadObject is
// the same value.
var ErrBadObject = errors.New("malformed git object")

// Reader reads whole git objects. Implementations are safe for concurrent
// use.
type Reader interface {
	// ReadObject returns the type and contents of object h, or an error
	// wrapping plumbing.ErrObjectNotFound.
	ReadObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error)
	// ObjectSize returns the type and size of object h from its header,
	// without inflating its contents, or an error wrapping
	// plumbing.ErrObjectNotFound.
	ObjectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error)
	// Reset forgets what the reader knows about the packs in the repository,
	// after a fetch or an outside git process has repacked it.
	Reset()
	// Close releases what the reader holds (mapped packs, open files).
	Close() error
}

var _ Reader = (*Objects)(nil)
