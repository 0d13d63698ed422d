package gitstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

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

// countEntries counts the objects of a type in a pack, read with go-git's
// pack scanner.
func countEntries(t *testing.T, packPath string, typ plumbing.ObjectType) int {
	t.Helper()
	f, err := os.Open(packPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := packfile.NewScanner(f)
	_, objects, err := sc.Header()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range objects {
		h, err := sc.NextObjectHeader()
		if err != nil {
			t.Fatal(err)
		}
		if h.Type == typ {
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
	idxFile, err := os.Open(strings.TrimSuffix(pack, ".pack") + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	defer idxFile.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(idxFile).Decode(idx); err != nil {
		t.Fatal(err)
	}
	off, err := idx.FindOffset(e.Hash)
	if err != nil {
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
