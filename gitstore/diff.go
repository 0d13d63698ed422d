package gitstore

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// DiffAction says what happened to a path between two trees.
type DiffAction int

// The actions of a DiffEntry.
const (
	Added DiffAction = iota + 1
	Modified
	Deleted
)

// String returns "added", "modified" or "deleted".
func (a DiffAction) String() string {
	switch a {
	case Added:
		return "added"
	case Modified:
		return "modified"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("DiffAction(%d)", int(a))
}

// DiffEntry is one path that differs between two trees. Directories never
// appear: a directory that appears or disappears shows as its files. A path
// that changes between file and directory shows as the file deleted (or
// added) and the directory's files added (or deleted).
type DiffEntry struct {
	// Path is the slash-separated path from the root.
	Path string
	// Action is Added, Modified or Deleted.
	Action DiffAction
	// OldMode and OldHash describe the path in the old tree (zero when
	// added); NewMode and NewHash in the new tree (zero when deleted).
	OldMode, NewMode filemode.FileMode
	OldHash, NewHash plumbing.Hash
}

// Diff lists the non-directory paths that differ between trees oldTree and
// newTree (zero for an empty tree), in git's path order. It descends only
// into subtrees whose ids differ, so its cost follows the size of the change,
// not of the trees.
func (r *Repo) Diff(oldTree, newTree plumbing.Hash) ([]DiffEntry, error) {
	var out []DiffEntry
	if err := r.diffTrees(oldTree, newTree, "", &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Repo) diffTrees(oldTree, newTree plumbing.Hash, prefix string, out *[]DiffEntry) error {
	if oldTree == newTree {
		return nil
	}
	olds, err := r.tree(oldTree)
	if err != nil {
		return err
	}
	news, err := r.tree(newTree)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(olds) || j < len(news) {
		var c int
		switch {
		case i == len(olds):
			c = 1
		case j == len(news):
			c = -1
		default:
			c = compareEntries(olds[i], news[j])
		}
		switch {
		case c < 0:
			if err := r.diffOne(&olds[i], nil, prefix, out); err != nil {
				return err
			}
			i++
		case c > 0:
			if err := r.diffOne(nil, &news[j], prefix, out); err != nil {
				return err
			}
			j++
		default:
			if err := r.diffOne(&olds[i], &news[j], prefix, out); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// diffOne compares one name of a directory: in the old tree only (n nil), in
// the new only (o nil), or in both with the same kind (both directories or
// both not).
func (r *Repo) diffOne(o, n *Entry, prefix string, out *[]DiffEntry) error {
	switch {
	case o != nil && n != nil && o.IsDir():
		return r.diffTrees(o.Hash, n.Hash, prefix+o.Name+"/", out)
	case o != nil && n != nil:
		if o.Hash != n.Hash || o.Mode != n.Mode {
			*out = append(*out, DiffEntry{Path: prefix + o.Name, Action: Modified,
				OldMode: o.Mode, OldHash: o.Hash, NewMode: n.Mode, NewHash: n.Hash})
		}
		return nil
	case o != nil && o.IsDir():
		return r.diffTrees(o.Hash, plumbing.ZeroHash, prefix+o.Name+"/", out)
	case o != nil:
		*out = append(*out, DiffEntry{Path: prefix + o.Name, Action: Deleted, OldMode: o.Mode, OldHash: o.Hash})
		return nil
	case n.IsDir():
		return r.diffTrees(plumbing.ZeroHash, n.Hash, prefix+n.Name+"/", out)
	default:
		*out = append(*out, DiffEntry{Path: prefix + n.Name, Action: Added, NewMode: n.Mode, NewHash: n.Hash})
		return nil
	}
}
