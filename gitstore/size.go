package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-git/go-git/v5/plumbing"
)

// ErrTooLarge is wrapped by ReadBlobMax when a blob is larger than the
// caller's limit; the blob was not inflated.
var ErrTooLarge = errors.New("object too large")

// ObjectSize returns the type and size of object h from its header alone:
// the type-and-size header of a packed object (and, for a delta, the target
// size at the start of the delta, inflating only those few bytes), or the
// "<type> <size>" header of a loose object. Nothing of the contents is
// inflated, so a 100 MB blob costs what a 100 byte one does.
func (r *Repo) ObjectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
	if data, ok := r.blobs.Get(h); ok {
		return plumbing.BlobObject, int64(len(data)), nil
	}
	typ, size, err := r.objects.ObjectSize(h)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the size of %s: %w", h, err)
	}
	return typ, size, nil
}

// BlobSize returns the size of blob h from its header (see ObjectSize).
func (r *Repo) BlobSize(h plumbing.Hash) (int64, error) {
	typ, size, err := r.ObjectSize(h)
	if err != nil {
		return 0, err
	}
	if typ != plumbing.BlobObject {
		return 0, fmt.Errorf("reading blob %s: object is a %s: %w", h, typ, ErrBadObject)
	}
	return size, nil
}

// ReadBlobMax returns the contents of blob h when it has at most max bytes,
// and otherwise an error wrapping ErrTooLarge without inflating it.
func (r *Repo) ReadBlobMax(h plumbing.Hash, max int64) ([]byte, error) {
	size, err := r.BlobSize(h)
	if err != nil {
		return nil, err
	}
	if size > max {
		return nil, fmt.Errorf("blob %s has %d bytes, more than %d: %w", h, size, max, ErrTooLarge)
	}
	data, err := r.blob(h)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}

// BlobSize returns the size of the blob with id h from its header.
func (s *Snapshot) BlobSize(h plumbing.Hash) (int64, error) { return s.repo.BlobSize(h) }

// ReadBlobMax is Repo.ReadBlobMax.
func (s *Snapshot) ReadBlobMax(h plumbing.Hash, max int64) ([]byte, error) {
	return s.repo.ReadBlobMax(h, max)
}

func (o *storerObjects) ObjectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, err := o.s.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if r, ok := o.s.(interface{ Reindex() }); ok {
			r.Reindex()
			obj, err = o.s.EncodedObject(plumbing.AnyObject, h)
		}
	}
	if err != nil {
		return 0, 0, err
	}
	return obj.Type(), obj.Size(), nil
}

// ReadFileMax is ReadFile for a file of at most max bytes: a larger one
// gives an error wrapping ErrTooLarge, its size read from the object header
// and its contents never inflated.
func (s *Snapshot) ReadFileMax(path string, max int64) ([]byte, error) {
	e, err := s.Stat(path)
	if err != nil {
		return nil, err
	}
	if !isFileMode(e.Mode) {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (mode %o)", uint32(e.Mode))}
	}
	data, err := s.repo.ReadBlobMax(e.Hash, max)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return data, nil
}
