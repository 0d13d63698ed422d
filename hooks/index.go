package hooks

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
)

// indexTree is the tree the staged index would commit.
type indexTree struct {
	blobs *gitstore.Snapshot // reads blobs by id
	files map[string]gitstore.Entry
	dirs  map[string][]gitstore.Entry
}

func newIndexTree(blobs *gitstore.Snapshot, entries []*index.Entry) (*indexTree, error) {
	t := &indexTree{blobs: blobs, files: map[string]gitstore.Entry{}, dirs: map[string][]gitstore.Entry{"": nil}}
	for _, e := range entries {
		// Stage 0 is a merged entry (go-git's index.Merged constant says 1,
		// but its decoder reads git's 0).
		if e.Stage != 0 {
			return nil, fmt.Errorf("%s has merge conflicts: resolve them first", e.Name)
		}
		if e.IntentToAdd {
			continue // not staged yet: git commit leaves it out
		}
		if e.Name == "" || strings.HasPrefix(e.Name, "/") || strings.HasSuffix(e.Name, "/") || strings.Contains(e.Name, "//") {
			return nil, fmt.Errorf("the index holds a malformed path %q", e.Name)
		}
		dir, name := path.Split(e.Name)
		dir = strings.TrimSuffix(dir, "/")
		t.files[e.Name] = gitstore.Entry{Name: name, Hash: e.Hash, Mode: e.Mode}
		t.addDir(dir)
		t.dirs[dir] = append(t.dirs[dir], gitstore.Entry{Name: name, Hash: e.Hash, Mode: e.Mode})
	}
	return t, nil
}

// addDir records dir and its parents as directories.
func (t *indexTree) addDir(dir string) {
	for dir != "" {
		if _, ok := t.dirs[dir]; ok {
			return
		}
		t.dirs[dir] = nil
		parent, name := path.Split(dir)
		parent = strings.TrimSuffix(parent, "/")
		t.dirs[parent] = append(t.dirs[parent], gitstore.Entry{Name: name, Mode: filemode.Dir})
		dir = parent
	}
}

// Stat implements tree.
func (t *indexTree) Stat(p string) (gitstore.Entry, error) {
	if p == "." {
		p = ""
	}
	if e, ok := t.files[p]; ok {
		return e, nil
	}
	if _, ok := t.dirs[p]; ok {
		return gitstore.Entry{Name: path.Base(p), Mode: filemode.Dir}, nil
	}
	return gitstore.Entry{}, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

// List implements tree.
func (t *indexTree) List(dir string) ([]gitstore.Entry, error) {
	if dir == "." {
		dir = ""
	}
	entries, ok := t.dirs[dir]
	if !ok {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: fs.ErrNotExist}
	}
	return append([]gitstore.Entry(nil), entries...), nil
}

// ReadFile implements tree.
func (t *indexTree) ReadFile(p string) ([]byte, error) {
	e, ok := t.files[p]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
	}
	if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("not a regular file (mode %s)", e.Mode)}
	}
	return t.blobs.Blob(e.Hash)
}

// Blob implements tree.
func (t *indexTree) Blob(h plumbing.Hash) ([]byte, error) { return t.blobs.Blob(h) }

// BlobSize implements tree.
func (t *indexTree) BlobSize(h plumbing.Hash) (int64, error) { return t.blobs.BlobSize(h) }

// diffToIndex lists what committing the index would change in head.
func diffToIndex(head *gitstore.Snapshot, idx *indexTree) ([]gitstore.DiffEntry, error) {
	old := map[string]gitstore.Entry{}
	err := head.Walk("", func(p string, e gitstore.Entry) error {
		if !e.IsDir() {
			old[p] = e
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []gitstore.DiffEntry
	for p, o := range old {
		n, ok := idx.files[p]
		switch {
		case !ok:
			out = append(out, gitstore.DiffEntry{Path: p, Action: gitstore.Deleted, OldMode: o.Mode, OldHash: o.Hash})
		case n.Hash != o.Hash || n.Mode != o.Mode:
			out = append(out, gitstore.DiffEntry{Path: p, Action: gitstore.Modified, OldMode: o.Mode, OldHash: o.Hash, NewMode: n.Mode, NewHash: n.Hash})
		}
	}
	for p, n := range idx.files {
		if _, ok := old[p]; !ok {
			out = append(out, gitstore.DiffEntry{Path: p, Action: gitstore.Added, NewMode: n.Mode, NewHash: n.Hash})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// readIndex decodes a git index file.
func readIndex(file string) ([]*index.Entry, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := &index.Index{}
	if err := index.NewDecoder(bufio.NewReaderSize(f, 1<<16)).Decode(idx); err != nil {
		return nil, fmt.Errorf("reading the index %s: %w", file, err)
	}
	return idx.Entries, nil
}

// CheckStaged judges what committing the index file would change on top of
// HEAD, as Check judges a commit's changes (a commit not made yet has no
// signature to check, and build records are not matched to a signer). On
// an unborn branch there is no trust policy yet and nothing is judged.
func CheckStaged(repo *gitstore.Repo, indexFile string, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := newChecker(repo, opts)
	_, head, err := repo.Head()
	if err != nil {
		return nil, err
	}
	headSnap, err := repo.Snapshot(head)
	if err != nil {
		return nil, err
	}
	entries, err := readIndex(indexFile)
	if err != nil {
		return nil, err
	}
	idx, err := newIndexTree(headSnap, entries)
	if err != nil {
		return nil, err
	}
	j := &job{oldTree: headSnap, newTree: idx, when: c.now, parentCommit: head}
	j.parent, err = c.states.load(headSnap)
	switch {
	case err == nil:
	case errors.Is(err, policy.ErrNoPolicy):
		c.res.Notes = append(c.res.Notes, "HEAD holds no trust policy yet: nothing to judge the staged changes against")
		return c.res, nil
	case errors.Is(err, policy.ErrBadPolicy):
		c.res.refuse(Refusal{Path: policy.PolicyFile, Rule: RulePolicy, Reason: fmt.Sprintf("HEAD's trust policy is invalid: %v", err)})
		return c.res, nil
	default:
		return nil, err
	}
	if j.changes, err = diffToIndex(headSnap, idx); err != nil {
		return nil, err
	}
	c.res.Commits = 1
	if err := c.judgeChanges(j); err != nil {
		return nil, err
	}
	sortRefusals(j.out)
	c.res.Refusals = append(c.res.Refusals, j.out...)
	return c.res, nil
}
