package gitstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
)

// checkSizes compares ObjectSize with the contents of every file and tree
// of commit's tree.
func checkSizes(t *testing.T, r *Repo, commit plumbing.Hash) int {
	t.Helper()
	snap, err := r.Snapshot(commit)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = snap.Walk("", func(p string, e Entry) error {
		typ, size, err := r.ObjectSize(e.Hash)
		if err != nil {
			t.Errorf("%s: ObjectSize: %v", p, err)
			return nil
		}
		want := plumbing.BlobObject
		data, rerr := snap.ReadFile(p)
		if e.IsDir() {
			want = plumbing.TreeObject
			data, rerr = r.object(plumbing.TreeObject, e.Hash)
		}
		if rerr != nil {
			t.Errorf("%s: reading: %v", p, rerr)
			return nil
		}
		if typ != want || size != int64(len(data)) {
			t.Errorf("%s: ObjectSize = %s %d, want %s %d", p, typ, size, want, len(data))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestObjectSize(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			r := b.open(t)
			c := mustCommit(t, r, plumbing.ZeroHash, "files", write("a/one", "1"), write("a/b/two", strings.Repeat("two", 1000)), write("empty", ""))
			if n := checkSizes(t, r, c); n < 5 {
				t.Errorf("only %d objects compared", n)
			}
			snap, _ := r.Snapshot(c)
			e, _ := snap.Stat("a/b/two")
			if _, err := snap.ReadBlobMax(e.Hash, 2999); !errors.Is(err, ErrTooLarge) {
				t.Errorf("ReadBlobMax below the size: %v, want ErrTooLarge", err)
			}
			if data, err := snap.ReadBlobMax(e.Hash, 3000); err != nil || len(data) != 3000 {
				t.Errorf("ReadBlobMax at the size: %d bytes, %v", len(data), err)
			}
			if _, err := snap.ReadFileMax("a/b/two", 2999); !errors.Is(err, ErrTooLarge) {
				t.Errorf("ReadFileMax below the size: %v, want ErrTooLarge", err)
			}
			if data, err := snap.ReadFileMax("a/b/two", 3000); err != nil || len(data) != 3000 {
				t.Errorf("ReadFileMax at the size: %d bytes, %v", len(data), err)
			}
			if _, err := snap.ReadFileMax("a", 3000); err == nil {
				t.Errorf("ReadFileMax of a directory succeeded")
			}
			if _, err := snap.ReadFileMax("nope", 3000); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFileMax of a missing file: %v", err)
			}
			tree, _ := snap.Stat("a")
			if _, err := snap.BlobSize(tree.Hash); !errors.Is(err, ErrBadObject) {
				t.Errorf("BlobSize of a tree: %v, want ErrBadObject", err)
			}
			if _, _, err := r.ObjectSize(plumbing.NewHash(strings.Repeat("ab", 20))); !errors.Is(err, plumbing.ErrObjectNotFound) {
				t.Errorf("ObjectSize of a missing object: %v", err)
			}
		})
	}
}

// TestObjectSizeInGitsPacks reads sizes from loose objects git wrote and
// from git's packs with delta chains, and a big blob's size without
// inflating it.
func TestObjectSizeInGitsPacks(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git")
	r, c, _ := packRepo(t, 120)
	dir := r.WorkDir()
	// A big zero-filled blob, loose, as git hash-object writes it.
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	id := plumbing.NewHash(strings.TrimSpace(interop.Git(t, dir, nil, "hash-object", "-w", big)))
	bigSize := func(what string) {
		t.Helper()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		size, err := r.BlobSize(id)
		runtime.ReadMemStats(&after)
		if err != nil || size != 64<<20 {
			t.Fatalf("%s: BlobSize = %d, %v", what, size, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Errorf("%s: reading the size allocated %d bytes: the blob was inflated", what, grew)
		}
		if _, err := r.ReadBlobMax(id, 4<<20); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: ReadBlobMax: %v, want ErrTooLarge", what, err)
		}
	}
	bigSize("loose")
	interop.Git(t, dir, nil, "tag", "big", id.String()) // reachable, so that repack packs it
	checkSizes(t, r, c)
	interop.Git(t, dir, nil, "-c", "pack.threads=1", "repack", "-adfq", "--window=50", "--depth=50")
	r.objects.Reset()
	out := interop.Git(t, dir, nil, "verify-pack", "-v", strings.TrimSuffix(packFiles(t, r)[0], ".pack")+".idx")
	if !strings.Contains(out, "chain length = ") {
		t.Fatalf("git made no delta chains; the test would prove nothing:\n%s", out)
	}
	// A fresh Repo: nothing cached from the reads above.
	fresh, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if n := checkSizes(t, fresh, c); n < 120 {
		t.Errorf("only %d objects compared", n)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "objects", id.String()[:2], id.String()[2:])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the big blob is still loose after repack (%v); the test would prove nothing", err)
	}
	r = fresh
	bigSize("packed")
}
