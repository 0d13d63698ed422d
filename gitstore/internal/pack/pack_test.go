package pack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// notFound is a fallback that has no objects.
type notFound struct{}

func (notFound) ReadObject(plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	return 0, nil, plumbing.ErrObjectNotFound
}

func (notFound) ObjectSize(plumbing.Hash) (plumbing.ObjectType, int64, error) {
	return 0, 0, plumbing.ErrObjectNotFound
}
func (notFound) Reset()       {}
func (notFound) Close() error { return nil }

// writeTestPack writes n signature-like blobs as one pack into a fresh
// objects directory and returns the directory, the pack's base path and the
// objects.
func writeTestPack(t *testing.T, n int) (string, string, []Object) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "objects")
	var objs []Object
	for i := range n {
		data := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"stagex/core-pkg%03d:1.0"},"image":{"docker-manifest-digest":"sha256:%064x"},"type":"atomic container signature"},"optional":{"creator":"signer %d"}}`, i/4, i/4, i%4)
		objs = append(objs, Object{Type: plumbing.BlobObject, Data: data, Hash: plumbing.ComputeHash(plumbing.BlobObject, data)})
	}
	base, err := WritePack(filepath.Join(dir, "pack"), objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, base, objs
}

// A pack WritePack wrote reads back, whole and by size, found by listing
// the pack directory as well as through AddPack.
func TestWritePackReadsBack(t *testing.T) {
	t.Parallel()
	dir, base, objs := writeTestPack(t, 120)
	if got := filepath.Base(base); !strings.HasPrefix(got, "pack-") || len(got) != len("pack-")+40 {
		t.Errorf("pack named %q, want pack-<checksum>", got)
	}
	listed := NewObjects(dir, notFound{})
	defer listed.Close()
	added := NewObjects(filepath.Join(t.TempDir(), "objects"), notFound{})
	defer added.Close()
	if err := added.AddPack(base); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]*Objects{"listed": listed, "added": added} {
		for _, want := range objs {
			typ, data, err := o.ReadObject(want.Hash)
			if err != nil || typ != want.Type || string(data) != string(want.Data) {
				t.Fatalf("%s: ReadObject(%s) = %s %q %v, want %s %q", name, want.Hash, typ, data, err, want.Type, want.Data)
			}
			typ, size, err := o.ObjectSize(want.Hash)
			if err != nil || typ != want.Type || size != int64(len(want.Data)) {
				t.Fatalf("%s: ObjectSize(%s) = %s %d %v, want %s %d", name, want.Hash, typ, size, err, want.Type, len(want.Data))
			}
		}
		missing := plumbing.ComputeHash(plumbing.BlobObject, []byte("not in the pack"))
		if _, _, err := o.ReadObject(missing); !errors.Is(err, plumbing.ErrObjectNotFound) {
			t.Errorf("%s: ReadObject of a missing object: %v, want ErrObjectNotFound", name, err)
		}
	}
}

// An object read back from the delta-base cache is checked against its id
// like one read from the pack.
func TestCachedBaseIsChecked(t *testing.T) {
	t.Parallel()
	dir, _, objs := writeTestPack(t, 120)
	h := objs[41].Hash
	o := NewObjects(dir, notFound{})
	defer o.Close()
	if _, _, err := o.ReadObject(h); err != nil {
		t.Fatalf("reading the object before its cached copy is damaged: %v", err)
	}
	off, err := o.packs[0].idx.FindOffset(h)
	if err != nil {
		t.Fatal(err)
	}
	o.bases.Add(packOffset{o.packs[0], off}, packedObject{plumbing.BlobObject, []byte("not the blob")}, 1)
	if got, _, err := o.ReadObject(h); !errors.Is(err, ErrBadObject) {
		t.Errorf("reading an object whose cached copy is wrong = %s, %v; want ErrBadObject", got, err)
	}
}

// pack.find answers as idxfile.MemoryIndex.FindOffset does, for every object
// in a pack and for ids that are not in it.
func TestPackFindMatchesIndex(t *testing.T) {
	t.Parallel()
	_, base, _ := writeTestPack(t, 120)
	p, err := openPack(base)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.unmap() }()
	entries, err := p.idx.Entries()
	if err != nil {
		t.Fatal(err)
	}
	defer entries.Close()
	var ids []plumbing.Hash
	for {
		e, err := entries.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Hash)
		for _, b := range []int{0, 19} { // absent neighbours
			other := e.Hash
			other[b] ^= 1
			ids = append(ids, other)
		}
	}
	ids = append(ids, plumbing.ZeroHash, plumbing.NewHash("ffffffffffffffffffffffffffffffffffffffff"))
	found := 0
	for _, h := range ids {
		got, ok := p.find(h)
		want, err := p.idx.FindOffset(h)
		if ok != (err == nil) || ok && got != want {
			t.Errorf("find(%s) = %d, %v; FindOffset = %d, %v", h, got, ok, want, err)
		}
		if ok {
			found++
		}
	}
	if found < 100 {
		t.Errorf("found only %d objects; the test would prove little", found)
	}
}

// WritePack renames the pack into place before its index, so a git process
// never sees an index without its pack: at "pack-written" the pack is there
// and the index is not.
func TestWritePackRenamesIndexLast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := []byte("x")
	objs := []Object{{Type: plumbing.BlobObject, Data: data, Hash: plumbing.ComputeHash(plumbing.BlobObject, data)}}
	var points []string
	base, err := WritePack(dir, objs, func(point string) {
		points = append(points, point)
		packs, _ := filepath.Glob(filepath.Join(dir, "pack-*.pack"))
		idxs, _ := filepath.Glob(filepath.Join(dir, "pack-*.idx"))
		if len(packs) != 1 || len(idxs) != 0 {
			t.Errorf("at %s: packs %q, indexes %q; want the pack alone", point, packs, idxs)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 1 || points[0] != "pack-written" {
		t.Errorf("reached %q, want [pack-written]", points)
	}
	for _, ext := range []string{".pack", ".idx"} {
		if _, err := os.Stat(base + ext); err != nil {
			t.Errorf("after WritePack: %v", err)
		}
	}
}
