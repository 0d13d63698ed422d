package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

// packRepo commits n signature-like files (similar enough for git to
// deltify them) in one commit to a repository on disk and returns what it
// wrote.
func packRepo(t *testing.T, n int) (*Repo, plumbing.Hash, map[string]string) {
	t.Helper()
	r := diskRepo(t, false)
	want := map[string]string{}
	var changes []Change
	for i := range n {
		p := fmt.Sprintf("stagex/core-pkg%03d@sha256=%064x/signature-%d", i/4, i/4, i%4+1)
		data := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"stagex/core-pkg%03d:1.0"},"image":{"docker-manifest-digest":"sha256:%064x"},"type":"atomic container signature"},"optional":{"creator":"signer %d"}}`, i/4, i/4, i%4)
		want[p] = data
		changes = append(changes, write(p, data))
	}
	c := mustCommit(t, r, plumbing.ZeroHash, "many", changes...)
	return r, c, want
}

// checkAll reopens the repository and compares every file of commit with
// want, reading them on several goroutines.
func checkAll(t *testing.T, dir string, commit plumbing.Hash, want map[string]string) {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Snapshot(commit)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var hashes []plumbing.Hash
	if err := s.Walk("", func(p string, e Entry) error {
		if !e.IsDir() {
			paths = append(paths, p)
			hashes = append(hashes, e.Hash)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(want) {
		t.Fatalf("%d files, want %d", len(paths), len(want))
	}
	results := make([][]byte, len(hashes))
	err = forEachParallel(len(hashes), func(i int) error {
		var err error
		results[i], err = s.Blob(hashes[i])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		if string(results[i]) != want[p] {
			t.Errorf("%s = %q, want %q", p, results[i], want[p])
		}
	}
}

func packFiles(t *testing.T, r *Repo) []string {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(r.GitDir(), "objects", "pack", "pack-*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return packs
}

func TestCommitWritesOnePack(t *testing.T) {
	t.Parallel()
	r, c, want := packRepo(t, 120)
	if packs := packFiles(t, r); len(packs) != 1 {
		t.Errorf("%d packs after a commit of 120 files, want 1", len(packs))
	}
	loose, _ := filepath.Glob(filepath.Join(r.GitDir(), "objects", "??", "*"))
	if len(loose) != 0 {
		t.Errorf("%d loose objects next to the pack", len(loose))
	}
	checkAll(t, r.WorkDir(), c, want)

	// A small commit on top writes loose objects, which read back too.
	c2 := mustCommit(t, r, c, "one more", write("extra", "x"))
	want["extra"] = "x"
	checkAll(t, r.WorkDir(), c2, want)
}

func TestInteropPacks(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r, c, want := packRepo(t, 200)
	var env []string
	dir := r.WorkDir()
	interop.Git(t, dir, env, "fsck", "--strict", "--no-progress")
	for _, p := range packFiles(t, r) {
		interop.Git(t, dir, env, "verify-pack", strings.TrimSuffix(p, ".pack")+".idx")
	}
	if out := interop.Git(t, dir, env, "status", "--porcelain"); out != "" {
		t.Errorf("git status:\n%s", out)
	}

	// git's own packs, with deep delta chains (OFS_DELTA).
	interop.Git(t, dir, env, "-c", "pack.threads=1", "repack", "-adfq", "--window=50", "--depth=50")
	out := interop.Git(t, dir, env, "verify-pack", "-v", strings.TrimSuffix(packFiles(t, r)[0], ".pack")+".idx")
	if !strings.Contains(out, "chain length = ") {
		t.Fatalf("git made no delta chains; the test would prove nothing:\n%s", out)
	}
	checkAll(t, dir, c, want)

	// go-git's packs with REF_DELTA.
	gr, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := gr.RepackObjects(&git.RepackConfig{UseRefDeltas: true}); err != nil {
		t.Fatal(err)
	}
	if n := countEntries(t, packFiles(t, r)[0], plumbing.REFDeltaObject); n == 0 {
		t.Fatal("go-git wrote no REF_DELTA objects; the test would prove nothing")
	}
	checkAll(t, dir, c, want)
}

// countEntries counts the objects of a type in a pack.
func countEntries(t *testing.T, packPath string, typ plumbing.ObjectType) int {
	t.Helper()
	p, err := openPack(strings.TrimSuffix(packPath, ".pack"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.unmap() }()
	entries, err := p.idx.Entries()
	if err != nil {
		t.Fatal(err)
	}
	defer entries.Close()
	n := 0
	for {
		ie, err := entries.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := parsePackEntry(p.data[ie.Offset:])
		if err != nil {
			t.Fatal(err)
		}
		if e.typ == typ {
			n++
		}
	}
	return n
}

func TestCorruptPackIsAnError(t *testing.T) {
	t.Parallel()
	r, c, _ := packRepo(t, 120)
	s, err := r.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Stat("stagex/core-pkg010@sha256=" + fmt.Sprintf("%064x", 10) + "/signature-2")
	if err != nil {
		t.Fatal(err)
	}
	pack := packFiles(t, r)[0]
	data, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(r.WorkDir())
	if err != nil {
		t.Fatal(err)
	}
	po := fresh.objects.(*packObjects)
	if err := po.loadPacks(false); err != nil {
		t.Fatal(err)
	}
	off, err := po.packs[0].idx.FindOffset(e.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage a byte inside the object's compressed data.
	data[off+10] ^= 0x55
	if err := os.Chmod(pack, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pack, data, 0o644); err != nil {
		t.Fatal(err)
	}
	broken, err := Open(r.WorkDir())
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	bs, err := broken.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bs.Blob(e.Hash); !errors.Is(err, ErrBadObject) {
		t.Errorf("reading a damaged object = %q, %v; want ErrBadObject", got, err)
	}
}

// An object read back from the delta-base cache is checked against its id
// like one read from the pack.
func TestCachedBaseIsChecked(t *testing.T) {
	t.Parallel()
	r, c, _ := packRepo(t, 120)
	s, err := r.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Stat("stagex/core-pkg010@sha256=" + fmt.Sprintf("%064x", 10) + "/signature-2")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(r.WorkDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	po := fresh.objects.(*packObjects)
	if err := po.loadPacks(false); err != nil {
		t.Fatal(err)
	}
	off, err := po.packs[0].idx.FindOffset(e.Hash)
	if err != nil {
		t.Fatal(err)
	}
	po.bases.add(packOffset{po.packs[0], off}, packedObject{plumbing.BlobObject, []byte("not the blob")}, 1)
	fs, err := fresh.Snapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Blob(e.Hash); !errors.Is(err, ErrBadObject) {
		t.Errorf("reading an object whose cached copy is wrong = %q, %v; want ErrBadObject", got, err)
	}
}

func FuzzParsePackEntry(f *testing.F) {
	f.Add(appendPackEntryHeader(nil, plumbing.BlobObject, 5))
	f.Add(appendPackEntryHeader(nil, plumbing.TreeObject, 1<<20))
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
		if e.size < 0 || e.size > maxObjectSize || len(e.compressed) > len(buf) {
			t.Fatalf("parsed size %d, %d compressed bytes of %d", e.size, len(e.compressed), len(buf))
		}
		if e.typ == plumbing.OFSDeltaObject && e.baseDistance < 0 {
			t.Fatalf("negative base distance %d", e.baseDistance)
		}
		// A whole object's header is what appendPackEntryHeader writes
		// for its type and size (for canonical encodings).
		if e.typ.IsDelta() {
			return
		}
		hdr := appendPackEntryHeader(nil, e.typ, e.size)
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

// pack.find answers as idxfile.MemoryIndex.FindOffset does, for every object
// in a pack and for ids that are not in it.
func TestPackFindMatchesIndex(t *testing.T) {
	t.Parallel()
	r, _, _ := packRepo(t, 120)
	p, err := openPack(strings.TrimSuffix(packFiles(t, r)[0], ".pack"))
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
