package gitstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/klauspost/compress/zlib"
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
	if data, ok := r.blobs.get(h); ok {
		return plumbing.BlobObject, int64(len(data)), nil
	}
	typ, size, err := r.objects.objectSize(h)
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

func (o *storerObjects) objectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
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

func (o *packObjects) objectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
	if err := o.loadPacks(false); err != nil {
		return 0, 0, err
	}
	if typ, size, found, err := o.sizePacked(h); found || err != nil {
		return typ, size, err
	}
	typ, size, err := o.sizeLoose(h)
	if !errors.Is(err, plumbing.ErrObjectNotFound) {
		return typ, size, err
	}
	if err := o.loadPacks(true); err != nil {
		return 0, 0, err
	}
	if typ, size, found, err := o.sizePacked(h); found || err != nil {
		return typ, size, err
	}
	return o.fallback.objectSize(h)
}

// maxDeltaHeader is the most bytes the two sizes that open a delta take.
const maxDeltaHeader = 20

// sizePacked reads the type and size of h from its pack entry's header. A
// delta's type is its base's, found by following the chain of headers (the
// bases' contents are never inflated); its size is the one the delta header
// names.
func (o *packObjects) sizePacked(h plumbing.Hash) (plumbing.ObjectType, int64, bool, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, p := range o.packs {
		off, ok := p.find(h)
		if !ok {
			continue
		}
		if b, ok := o.bases.get(packOffset{p, off}); ok {
			return b.typ, int64(len(b.data)), true, nil
		}
		typ, size, err := sizeAt(p, off)
		if err != nil {
			return 0, 0, true, fmt.Errorf("reading the header of %s in %s: %w", h, p.name, err)
		}
		return typ, size, true, nil
	}
	return 0, 0, false, nil
}

// sizeAt reads the type and size of the object at offset in p.
func sizeAt(p *pack, offset int64) (plumbing.ObjectType, int64, error) {
	var size int64 = -1
	for depth := 0; depth <= maxDeltaDepth; depth++ {
		if offset < packHeaderSize || offset >= int64(len(p.data))-packTrailerSize {
			return 0, 0, fmt.Errorf("no object starts at offset %d: %w", offset, ErrBadObject)
		}
		e, err := parsePackEntry(p.data[offset : int64(len(p.data))-packTrailerSize])
		if err != nil {
			return 0, 0, fmt.Errorf("object at offset %d: %w", offset, err)
		}
		switch e.typ {
		case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
			if size < 0 {
				size = e.size
			}
			return e.typ, size, nil
		}
		if size < 0 {
			head, err := inflatePrefix(e.compressed, min(e.size, maxDeltaHeader))
			if err != nil {
				return 0, 0, fmt.Errorf("object at offset %d: %w", offset, err)
			}
			if size, err = deltaTargetSize(head); err != nil || size > maxObjectSize {
				return 0, 0, fmt.Errorf("object at offset %d: bad delta header: %w", offset, ErrBadObject)
			}
		}
		switch e.typ {
		case plumbing.OFSDeltaObject:
			if e.baseDistance <= 0 || offset-e.baseDistance < packHeaderSize {
				return 0, 0, fmt.Errorf("object at offset %d: bad delta base distance: %w", offset, ErrBadObject)
			}
			offset -= e.baseDistance
		case plumbing.REFDeltaObject:
			base, ok := p.find(e.baseHash)
			if !ok {
				return 0, 0, fmt.Errorf("object at offset %d: delta base %s not in the pack: %w", offset, e.baseHash, ErrBadObject)
			}
			offset = base
		}
	}
	return 0, 0, fmt.Errorf("delta chain longer than %d: %w", maxDeltaDepth, ErrBadObject)
}

// inflatePrefix inflates the first n bytes of a zlib stream.
func inflatePrefix(compressed []byte, n int64) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("inflating: %w: %w", ErrBadObject, err)
	}
	defer zr.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(zr, buf); err != nil {
		return nil, fmt.Errorf("inflating: %w: %w", ErrBadObject, err)
	}
	return buf, nil
}

// maxLooseHeader bounds the "<type> <size>\x00" header of a loose object.
const maxLooseHeader = 32

// sizeLoose reads the header of a loose object, inflating only that.
func (o *packObjects) sizeLoose(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
	hex := h.String()
	f, err := os.Open(filepath.Join(o.dir, hex[:2], hex[2:]))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, plumbing.ErrObjectNotFound
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	zr, err := zlib.NewReader(bufio.NewReaderSize(f, 512))
	if err != nil {
		return 0, 0, fmt.Errorf("reading loose object %s: %w: %w", h, ErrBadObject, err)
	}
	defer zr.Close()
	var buf [maxLooseHeader]byte
	n, err := io.ReadFull(zr, buf[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, 0, fmt.Errorf("reading loose object %s: %w: %w", h, ErrBadObject, err)
	}
	header, _, ok := bytes.Cut(buf[:n], []byte{0})
	if !ok {
		return 0, 0, fmt.Errorf("reading loose object %s: no object header: %w", h, ErrBadObject)
	}
	typ, size, err := parseLooseHeader(header)
	if err != nil {
		return 0, 0, fmt.Errorf("reading loose object %s: %w", h, err)
	}
	return typ, size, nil
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
