package pack

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
)

// HeaderSize is the size of a pack's header: "PACK", the version and the
// number of objects.
const HeaderSize = packHeaderSize

// CheckSizes walks the entries of a whole pack stream (whose checksum the
// caller checked) before anything is stored: each object, and each object a
// delta makes, at most MaxObjectSize; all of them together at most
// maxTotal; each zlib stream exactly its declared size; the entries exactly
// fill the pack. The pack must be at least HeaderSize plus a checksum long
// and start with "PACK".
func CheckSizes(pack []byte, maxTotal int64) error {
	if v := binary.BigEndian.Uint32(pack[4:8]); v != 2 {
		return fmt.Errorf("pack version %d, want 2", v)
	}
	count := binary.BigEndian.Uint32(pack[8:12])
	body := pack[packHeaderSize : len(pack)-sha1.Size]
	var total int64
	var zr io.ReadCloser
	for i := uint32(0); i < count; i++ {
		if len(body) == 0 {
			return fmt.Errorf("the pack ends after %d of its %d objects", i, count)
		}
		e, err := parsePackEntry(body)
		if err != nil {
			return fmt.Errorf("object %d of the pack: %w", i, err)
		}
		src := bytes.NewReader(e.compressed)
		if zr == nil {
			if zr, err = zlib.NewReader(src); err != nil {
				return fmt.Errorf("object %d of the pack: %v", i, err)
			}
		} else if err := zr.(zlib.Resetter).Reset(src, nil); err != nil {
			return fmt.Errorf("object %d of the pack: %v", i, err)
		}
		var head bytes.Buffer
		n, err := io.Copy(&limitedHead{buf: &head, keep: 20}, io.LimitReader(zr, e.size+1))
		if err != nil {
			return fmt.Errorf("object %d of the pack: %v", i, err)
		}
		if n != e.size {
			return fmt.Errorf("object %d of the pack inflates to %d bytes, not the %d it declares", i, n, e.size)
		}
		if _, err := zr.Read(make([]byte, 1)); err != io.EOF {
			return fmt.Errorf("object %d of the pack: its zlib stream does not end where it should", i)
		}
		total += e.size
		if e.typ == plumbing.OFSDeltaObject || e.typ == plumbing.REFDeltaObject {
			target, err := deltaTargetSize(head.Bytes())
			if err != nil {
				return fmt.Errorf("object %d of the pack: %w", i, err)
			}
			if target > MaxObjectSize {
				return fmt.Errorf("object %d of the pack makes an object of %d bytes: %w", i, target, ErrBadObject)
			}
			total += target
		}
		if total > maxTotal {
			return fmt.Errorf("the pack's objects inflate to more than %d bytes", maxTotal)
		}
		body = e.compressed[len(e.compressed)-src.Len():]
	}
	if len(body) != 0 {
		return fmt.Errorf("%d bytes after the pack's %d objects", len(body), count)
	}
	return nil
}

// limitedHead is a writer that keeps the first keep bytes written to it and
// counts the rest.
type limitedHead struct {
	buf  *bytes.Buffer
	keep int
}

func (w *limitedHead) Write(p []byte) (int, error) {
	if room := w.keep - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
