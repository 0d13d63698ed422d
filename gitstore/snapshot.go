package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Snapshot is a read-only view of the tree of one commit. Its methods are
// safe for concurrent use; trees and blobs are decoded once per Repo and
// shared by every Snapshot.
type Snapshot struct {
	repo   *Repo
	commit plumbing.Hash
	tree   plumbing.Hash
}

// Snapshot returns a view of the tree of commit; the zero hash gives an
// empty tree (the state of an unborn branch).
func (r *Repo) Snapshot(commit plumbing.Hash) (*Snapshot, error) {
	s := &Snapshot{repo: r, commit: commit}
	if commit.IsZero() {
		return s, nil
	}
	info, err := r.ReadCommit(commit)
	if err != nil {
		return nil, err
	}
	s.tree = info.Tree
	return s, nil
}

// Commit returns the commit the snapshot shows (zero for the empty tree).
func (s *Snapshot) Commit() plumbing.Hash { return s.commit }

// Tree returns the id of the snapshot's root tree (zero for the empty tree).
func (s *Snapshot) Tree() plumbing.Hash { return s.tree }

// Stat returns the entry at path: a file, link, submodule or directory. The
// root itself ("" or ".") is a directory entry with an empty name. A missing
// path gives an error wrapping fs.ErrNotExist.
func (s *Snapshot) Stat(path string) (Entry, error) {
	if err := checkDir(path); err != nil {
		return Entry{}, err
	}
	e, err := s.repo.lookup(s.tree, path)
	if err != nil {
		return Entry{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return e, nil
}

// lookup walks from tree root to path, one cached tree per component.
func (r *Repo) lookup(root plumbing.Hash, path string) (Entry, error) {
	cur := Entry{Hash: root, Mode: filemode.Dir}
	for _, name := range splitPath(path) {
		if !cur.IsDir() {
			return Entry{}, fs.ErrNotExist
		}
		entries, err := r.tree(cur.Hash)
		if err != nil {
			return Entry{}, err
		}
		i := findEntry(entries, name)
		if i < 0 {
			return Entry{}, fs.ErrNotExist
		}
		cur = entries[i]
	}
	return cur, nil
}

// ReadFile returns the contents of the regular file at path. A missing path
// gives an error wrapping fs.ErrNotExist; a directory, symbolic link or
// submodule is an error too.
func (s *Snapshot) ReadFile(path string) ([]byte, error) {
	e, err := s.Stat(path)
	if err != nil {
		return nil, err
	}
	if !isFileMode(e.Mode) {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (mode %o)", uint32(e.Mode))}
	}
	data, err := s.repo.blob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return bytes.Clone(data), nil
}

// isFileMode reports whether m is a regular file, executable or not.
func isFileMode(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Deprecated
}

// List returns the entries of directory dir ("" or "." for the root) in
// git's order. A missing directory gives an error wrapping fs.ErrNotExist.
func (s *Snapshot) List(dir string) ([]Entry, error) {
	e, err := s.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: errors.New("not a directory")}
	}
	entries, err := s.repo.tree(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: err}
	}
	return append([]Entry(nil), entries...), nil
}

// Walk calls fn for every entry below dir ("" or "." for the root), in git's
// order, a directory before its contents, with the entry's slash-separated
// path from the root of the tree. As with fs.WalkDir, fs.SkipDir returned
// for a directory skips its contents and for a file the rest of its
// directory; fs.SkipAll stops the walk without error; any other error stops
// the walk and is returned.
func (s *Snapshot) Walk(dir string, fn func(path string, e Entry) error) error {
	e, err := s.Stat(dir)
	if err != nil {
		return err
	}
	if !e.IsDir() {
		return &fs.PathError{Op: "walk", Path: dir, Err: errors.New("not a directory")}
	}
	prefix := ""
	if dir != "" && dir != "." {
		prefix = dir + "/"
	}
	err = s.repo.walk(e.Hash, prefix, fn)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func (r *Repo) walk(tree plumbing.Hash, prefix string, fn func(string, Entry) error) error {
	entries, err := r.tree(tree)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := prefix + e.Name
		err := fn(p, e)
		switch {
		case errors.Is(err, fs.SkipDir) && e.IsDir():
			continue
		case errors.Is(err, fs.SkipDir):
			return nil // like fs.WalkDir: skip the rest of this directory
		case err != nil:
			return err
		case e.IsDir():
			if err := r.walk(e.Hash, p+"/", fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Blob returns the contents of the blob with id h, which need not be in the
// snapshot's tree.
func (s *Snapshot) Blob(h plumbing.Hash) ([]byte, error) {
	data, err := s.repo.blob(h)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}
