package pack

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

// ObjectSize returns the type and size of object h from its header alone:
// the type-and-size header of a packed object (and, for a delta, the target
// size at the start of the delta, inflating only those few bytes), or the
// "<type> <size>" header of a loose object. Nothing of the contents is
// inflated.
func (o *Objects) ObjectSize(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
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
	return o.fallback.ObjectSize(h)
}

// maxDeltaHeader is the most bytes the two sizes that open a delta take.
const maxDeltaHeader = 20

// sizePacked reads the type and size of h from its pack entry's header. A
// delta's type is its base's, found by following the chain of headers (the
// bases' contents are never inflated); its size is the one the delta header
// names.
func (o *Objects) sizePacked(h plumbing.Hash) (plumbing.ObjectType, int64, bool, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, p := range o.packs {
		off, ok := p.find(h)
		if !ok {
			continue
		}
		if b, ok := o.bases.Get(packOffset{p, off}); ok {
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
			if size, err = deltaTargetSize(head); err != nil || size > MaxObjectSize {
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
func (o *Objects) sizeLoose(h plumbing.Hash) (plumbing.ObjectType, int64, error) {
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
