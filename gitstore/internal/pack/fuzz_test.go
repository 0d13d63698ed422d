package pack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/klauspost/compress/zlib"
)

func FuzzParsePackEntry(f *testing.F) {
	f.Add(AppendEntryHeader(nil, plumbing.BlobObject, 5))
	f.Add(AppendEntryHeader(nil, plumbing.TreeObject, 1<<20))
	f.Add([]byte{0x65, 0x81, 0x00, 'x'})                           // OFS_DELTA
	f.Add(append([]byte{0x75}, bytes.Repeat([]byte{0xab}, 20)...)) // REF_DELTA
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, buf []byte) {
		if size, err := deltaTargetSize(buf); err == nil && size < 0 {
			t.Fatalf("negative delta target size %d", size)
		}
		e, err := parsePackEntry(buf)
		if err != nil {
			return
		}
		if e.size < 0 || e.size > MaxObjectSize || len(e.compressed) > len(buf) {
			t.Fatalf("parsed size %d, %d compressed bytes of %d", e.size, len(e.compressed), len(buf))
		}
		if e.typ == plumbing.OFSDeltaObject && e.baseDistance < 0 {
			t.Fatalf("negative base distance %d", e.baseDistance)
		}
		// A whole object's header is what AppendEntryHeader writes
		// for its type and size (for canonical encodings).
		if e.typ.IsDelta() {
			return
		}
		hdr := AppendEntryHeader(nil, e.typ, e.size)
		again, err := parsePackEntry(append(hdr, e.compressed...))
		if err != nil || again.typ != e.typ || again.size != e.size || !bytes.Equal(again.compressed, e.compressed) {
			t.Fatalf("header round trip: %v %+v vs %+v", err, again, e)
		}
	})
}

func FuzzParseLooseObject(f *testing.F) {
	f.Add([]byte("blob 5\x00hello"))
	f.Add([]byte("tree 0\x00"))
	f.Add([]byte("commit 01\x00x"))
	f.Add([]byte("ofs-delta 1\x00x"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		typ, data, err := parseLooseObject(raw)
		if err != nil {
			return
		}
		// It accepts exactly the canonical encoding of what it returns.
		canonical := fmt.Sprintf("%s %d\x00%s", typ, len(data), data)
		if canonical != string(raw) {
			t.Fatalf("accepted %q, canonical form %q", raw, canonical)
		}
	})
}

// FuzzSizeAt reads sizes from packed object headers as a pushed pack may
// hold them: it never panics, loops or reads past the pack, and for a whole
// object it reports what parsing the entry reports.
func FuzzSizeAt(f *testing.F) {
	f.Add(AppendEntryHeader(nil, plumbing.BlobObject, 5))
	f.Add(AppendEntryHeader(nil, plumbing.BlobObject, 100<<20))
	f.Add([]byte{0x60 | 0x05, 0x01}) // OFS_DELTA pointing one byte back
	f.Add([]byte{0x70 | 0x05})       // REF_DELTA, truncated
	f.Fuzz(func(t *testing.T, entry []byte) {
		data := append(make([]byte, packHeaderSize), entry...)
		data = append(data, make([]byte, packTrailerSize)...)
		idx := &idxfile.MemoryIndex{}
		for i := range idx.FanoutMapping {
			idx.FanoutMapping[i] = -1
		}
		p := &pack{name: "fuzz", data: data, idx: idx}
		typ, size, err := sizeAt(p, packHeaderSize)
		if err != nil {
			return
		}
		if size < 0 || size > MaxObjectSize {
			t.Fatalf("size %d out of range", size)
		}
		if e, perr := parsePackEntry(entry); perr == nil && e.typ >= plumbing.CommitObject && e.typ <= plumbing.TagObject {
			if e.typ != typ || e.size != size {
				t.Fatalf("sizeAt = %s %d, parsePackEntry = %s %d", typ, size, e.typ, e.size)
			}
		}
	})
}

// TestReadLooseByHeader: a loose object is read into a buffer of the size its
// header gives, and refused when the stream holds more or less than that.
func TestReadLooseByHeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(raw string, id plumbing.Hash) {
		t.Helper()
		hex := id.String()
		if err := os.MkdirAll(filepath.Join(dir, hex[:2]), 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		if _, err := zw.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, hex[:2], hex[2:]), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := hashObject(plumbing.BlobObject, []byte("hello"))
	write("blob 5\x00hello", good)
	o := NewObjects(dir, nil)
	if typ, data, err := o.readLoose(good); err != nil || typ != plumbing.BlobObject || string(data) != "hello" {
		t.Fatalf("readLoose = %s %q %v", typ, data, err)
	}
	if typ, size, err := o.sizeLoose(good); err != nil || typ != plumbing.BlobObject || size != 5 {
		t.Fatalf("sizeLoose = %s %d %v", typ, size, err)
	}
	for name, raw := range map[string]string{
		"longer":    "blob 5\x00hello!",
		"shorter":   "blob 6\x00hello",
		"no header": "hello",
		"bad size":  "blob 05\x00hello",
		"huge":      "blob 999999999999\x00hello",
	} {
		id := hashObject(plumbing.BlobObject, []byte(name))
		write(raw, id)
		if _, _, err := o.readLoose(id); !errors.Is(err, ErrBadObject) {
			t.Errorf("%s: readLoose = %v, want ErrBadObject", name, err)
		}
	}
}
