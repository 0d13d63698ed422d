package gitstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/tally-sig/tally/internal/interop"
)

// The benchmark fixture is a signatures repository the size StageX's grows
// to: 10 releases of 500 images, each signed by 4 maintainers, in 40
// commits of 500 signatures plus a build record each: 20,000 signature
// files in 5,000 digest directories of one namespace. It is packed the way
// a clone receives it and checked out with its index. It is built once per
// test binary run, deterministically, in a temporary directory.
const (
	fixtureReleases = 10
	fixtureImages   = 500
	fixtureSigners  = 4
	fixtureFiles    = fixtureReleases * fixtureImages * fixtureSigners
)

type fixture struct {
	dir   string          // the repository, with a working tree
	tip   plumbing.Hash   // main
	prev  plumbing.Hash   // main's parent: 500 signatures fewer
	blobs []plumbing.Hash // the signature blobs of tip, in path order
	how   string          // how it was packed
}

var (
	fixtureOnce sync.Once
	fixtureData *fixture
	fixtureErr  error
	fixtureRoot string
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdLockEnv); dir != "" {
		holdLock(dir) // never returns
	}
	if spec := os.Getenv(crashEnv); spec != "" {
		crashChild(spec) // never returns
	}
	code := m.Run()
	if fixtureRoot != "" {
		_ = os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

// loadFixture builds the fixture on first use.
func loadFixture(b *testing.B) *fixture {
	b.Helper()
	fixtureOnce.Do(func() {
		fixtureRoot, fixtureErr = os.MkdirTemp("", "tally-gitstore-bench")
		if fixtureErr == nil {
			fixtureData, fixtureErr = buildFixture(filepath.Join(fixtureRoot, "sigs"))
		}
	})
	if fixtureErr != nil {
		b.Fatalf("building the fixture: %v", fixtureErr)
	}
	return fixtureData
}

// prng is a deterministic stream of bytes for fixture contents.
type prng struct {
	seed    [32]byte
	counter uint64
}

func (p *prng) bytes(n int) []byte {
	out := make([]byte, 0, n+32)
	for len(out) < n {
		var block [40]byte
		copy(block[:], p.seed[:])
		binary.BigEndian.PutUint64(block[32:], p.counter)
		p.counter++
		sum := sha256.Sum256(block[:])
		out = append(out, sum[:]...)
	}
	return out[:n]
}

// fakeSignature imitates the bytes of a binary OpenPGP signed message as
// tally writes them: a one-pass signature packet, a literal data packet
// holding the simple-signing payload and a signature packet, random where
// the real one is random, so that git compresses and deltifies it as it
// would the real thing.
func fakeSignature(p *prng, image, digest string, signer int) []byte {
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"stagex/%s:1.%d"},"image":{"docker-manifest-digest":"sha256:%s"},"type":"atomic container signature"},"optional":{"creator":"tally 0.1","timestamp":%d}}`,
		image, signer, digest, 1748779200+signer*3600)
	var b []byte
	b = append(b, 0x90, 0x0d, 0x03, 0x00, 0x0a, 0x16)
	b = append(b, p.bytes(8)...) // issuer key id
	b = append(b, 0x01, 0xcb, byte(len(payload)+6), 'b', 0, 0, 0, 0, 0)
	b = append(b, payload...)
	b = append(b, 0x88, 0x75, 0x04, 0x00, 0x16, 0x0a, 0x00, 0x1d, 0x16, 0x21, 0x04)
	b = append(b, p.bytes(20)...) // issuer fingerprint
	b = append(b, p.bytes(70+signer%2*330)...)
	return b
}

// buildFixture writes the fixture repository at dir with tally's own Commit
// (which also checks out the files and fills the index), then packs it.
func buildFixture(dir string) (*fixture, error) {
	r, err := Init(dir, false, "")
	if err != nil {
		return nil, err
	}
	r.now = testClock
	p := &prng{seed: sha256.Sum256([]byte("tally gitstore fixture"))}
	var tip, prev plumbing.Hash
	for rel := range fixtureReleases {
		release := fmt.Sprintf("2025.%02d.0", rel+1)
		digests := make([]string, fixtureImages)
		for i := range digests {
			digests[i] = hex.EncodeToString(p.bytes(32))
		}
		for signer := range fixtureSigners {
			fpr := strings.ToUpper(hex.EncodeToString(p.bytes(20)))
			var changes []Change
			var record strings.Builder
			for i, digest := range digests {
				image := fmt.Sprintf("core-pkg%03d", i)
				dir := fmt.Sprintf("stagex/%s@sha256=%s", image, digest)
				changes = append(changes, Change{Path: fmt.Sprintf("%s/signature-%d", dir, signer+1),
					Data: fakeSignature(p, image, digest, signer)})
				fmt.Fprintf(&record, "%s stagex/%s\n", digest, image)
			}
			changes = append(changes, Change{Path: fmt.Sprintf("builds/%s/%s.txt", release, fpr), Data: []byte(record.String())})
			h, err := r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{tip}, Changes: changes,
				Message: fmt.Sprintf("sign %s as %s", release, fpr[:16]), Author: testAuthor()})
			if err != nil {
				return nil, err
			}
			prev, tip = tip, h
		}
	}
	f := &fixture{dir: dir, tip: tip, prev: prev}
	s, err := r.Snapshot(tip)
	if err != nil {
		return nil, err
	}
	if err := s.Walk("stagex", func(p string, e Entry) error {
		if !e.IsDir() {
			f.blobs = append(f.blobs, e.Hash)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(f.blobs) != fixtureFiles {
		return nil, fmt.Errorf("fixture has %d signatures, want %d", len(f.blobs), fixtureFiles)
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
	f.how, err = packFixture(dir)
	return f, err
}

// packFixture packs every object as a clone would receive them: with git
// when it is installed (single-threaded, so the pack is deterministic), else
// with go-git. Loose objects are removed either way.
func packFixture(dir string) (string, error) {
	if _, err := exec.LookPath("git"); err == nil {
		cmd := exec.Command("git", "-c", "pack.threads=1", "repack", "-adq")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git repack: %v: %s", err, out)
		}
		cmd = exec.Command("git", "prune-packed")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git prune-packed: %v: %s", err, out)
		}
		return "git repack -ad", nil
	}
	gr, err := git.PlainOpen(dir)
	if err != nil {
		return "", err
	}
	if err := gr.RepackObjects(&git.RepackConfig{}); err != nil {
		return "", err
	}
	objects := filepath.Join(dir, ".git", "objects")
	entries, err := os.ReadDir(objects)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if len(e.Name()) == 2 {
			if err := os.RemoveAll(filepath.Join(objects, e.Name())); err != nil {
				return "", err
			}
		}
	}
	return "go-git RepackObjects (git not installed)", nil
}

// copyDir copies a directory tree of regular files.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o777)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// BenchmarkReadAll20000 reads every signature of the fixture's tip the way
// tally status does, from a freshly opened repository: walk the tree, then
// read the blobs on all cores.
func BenchmarkReadAll20000(b *testing.B) {
	f := loadFixture(b)
	b.Logf("fixture packed by %s", f.how)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(f.dir)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := readAllParallel(r, f.tip); err != nil || n != fixtureFiles {
			b.Fatalf("read %d files: %v", n, err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAll20000Warm reads them again from a Repo that has read them
// before: what a long-running process pays.
func BenchmarkReadAll20000Warm(b *testing.B) {
	f := loadFixture(b)
	r, err := Open(f.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if _, err := readAllParallel(r, f.tip); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if n, err := readAllParallel(r, f.tip); err != nil || n != fixtureFiles {
			b.Fatalf("read %d files: %v", n, err)
		}
	}
}

// readAllParallel walks stagex/ of commit and reads each signature on
// GOMAXPROCS goroutines, as a verifier would.
func readAllParallel(r *Repo, commit plumbing.Hash) (int, error) {
	s, err := r.Snapshot(commit)
	if err != nil {
		return 0, err
	}
	var blobs []plumbing.Hash
	if err := s.Walk("stagex", func(p string, e Entry) error {
		if !e.IsDir() {
			blobs = append(blobs, e.Hash)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	return len(blobs), forEachParallel(len(blobs), func(i int) error {
		_, err := s.Blob(blobs[i])
		return err
	})
}

// BenchmarkReadAll20000Naive is the baseline: go-git's PlainOpen and
// object.Tree.Files over the same commit, reading each file.
func BenchmarkReadAll20000Naive(b *testing.B) {
	f := loadFixture(b)
	b.ResetTimer()
	for b.Loop() {
		gr, err := git.PlainOpen(f.dir)
		if err != nil {
			b.Fatal(err)
		}
		c, err := gr.CommitObject(f.tip)
		if err != nil {
			b.Fatal(err)
		}
		tree, err := c.Tree()
		if err != nil {
			b.Fatal(err)
		}
		stagex, err := tree.Tree("stagex")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = stagex.Files().ForEach(func(file *object.File) error {
			_, err := file.Contents()
			n++
			return err
		})
		if err != nil || n != fixtureFiles {
			b.Fatalf("read %d files: %v", n, err)
		}
	}
}

// BenchmarkReadAll20000GoGitTuned is go-git with the storage options tally
// uses (open pack descriptors, a larger cache), read serially without
// tally's caches: how much comes from configuration alone.
func BenchmarkReadAll20000GoGitTuned(b *testing.B) {
	f := loadFixture(b)
	b.ResetTimer()
	for b.Loop() {
		st := filesystem.NewStorageWithOptions(osfs.New(filepath.Join(f.dir, ".git")),
			cache.NewObjectLRU(objectCacheSize), filesystem.Options{KeepDescriptors: true})
		for _, h := range f.blobs {
			if _, _, err := readEncoded(st, h); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAll20000CatFile is the reference: git ls-tree -r piped into
// git cat-file --batch, which reads every blob of the commit.
func BenchmarkReadAll20000CatFile(b *testing.B) {
	interop.Require(b, "git")
	f := loadFixture(b)
	b.ResetTimer()
	for b.Loop() {
		ls := exec.Command("git", "ls-tree", "-r", "--format=%(objectname)", f.tip.String(), "stagex")
		ls.Dir = f.dir
		cat := exec.Command("git", "cat-file", "--batch")
		cat.Dir = f.dir
		pipe, err := ls.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cat.Stdin = pipe
		out, err := cat.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := ls.Start(); err != nil {
			b.Fatal(err)
		}
		if err := cat.Start(); err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, out)
		if err != nil || n < fixtureFiles*100 {
			b.Fatalf("cat-file gave %d bytes: %v", n, err)
		}
		if err := ls.Wait(); err != nil {
			b.Fatal(err)
		}
		if err := cat.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit500Into20000 adds a signature to each of the 500 images of
// a release on top of the fixture: 500 new files, the trees on their paths,
// a commit, the branch, and the working tree and index. The repository is
// a copy of the fixture, reopened for every commit as the CLI would.
func BenchmarkCommit500Into20000(b *testing.B) {
	f := loadFixture(b)
	dir := filepath.Join(b.TempDir(), "sigs")
	if err := copyDir(f.dir, dir); err != nil {
		b.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	s, err := r.Snapshot(f.tip)
	if err != nil {
		b.Fatal(err)
	}
	images, err := s.List("stagex")
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	images = images[len(images)-fixtureImages:]
	tip := f.tip
	p := &prng{seed: sha256.Sum256([]byte("benchmark commits"))}
	number := fixtureSigners
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		number++
		changes := make([]Change, len(images))
		for i, img := range images {
			changes[i] = Change{Path: fmt.Sprintf("stagex/%s/signature-%d", img.Name, number),
				Data: fakeSignature(p, img.Name, strings.Repeat("0", 64), number)}
		}
		b.StartTimer()
		r, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		tip, err = r.Commit(CommitRequest{Branch: "main", Parents: []plumbing.Hash{tip}, Changes: changes,
			Message: "sign", Author: testAuthor()})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff500 diffs the fixture's last commit against its parent (500
// signatures and a build record added) in a freshly opened repository, as a
// push hook does.
func BenchmarkDiff500(b *testing.B) {
	f := loadFixture(b)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(f.dir)
		if err != nil {
			b.Fatal(err)
		}
		d, err := r.Diff(treeOf(b, r, f.prev), treeOf(b, r, f.tip))
		if err != nil || len(d) != fixtureImages+1 {
			b.Fatalf("diff has %d entries: %v", len(d), err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// forEachParallel calls fn for 0 <= i < n on GOMAXPROCS goroutines and
// returns the errors.
func forEachParallel(n int, fn func(i int) error) error {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkClean20000 checks that the fixture's 20,000-file working tree
// and index match HEAD, from a freshly opened repository.
func BenchmarkClean20000(b *testing.B) {
	f := loadFixture(b)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(f.dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Clean(); err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
