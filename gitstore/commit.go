package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Change is one file written or deleted by a commit.
type Change struct {
	// Path is the clean slash-separated path from the root of the tree.
	Path string
	// Data is the new contents of a regular file (mode 100644).
	Data []byte
	// Delete removes the file at Path instead; it must exist and not be a
	// directory.
	Delete bool
}

// CommitRequest describes a commit for Repo.Commit.
type CommitRequest struct {
	// Branch is the branch to move, "refs/heads/..." or a short name.
	Branch plumbing.ReferenceName
	// Parents are the new commit's parents. The first is the branch's
	// expected current tip and the tree the changes apply to; none (or a
	// zero first parent with no others) creates the branch's first commit.
	Parents []plumbing.Hash
	// Changes are the files to write and delete, each path at most once.
	Changes []Change
	// Message is the commit message; a final newline is added if missing.
	Message string
	// Author and Committer identify who made the commit. A zero When is the
	// current time; a zero Committer is the Author.
	Author, Committer object.Signature
	// Sign, when set, returns an ASCII-armored detached signature over the
	// commit object encoded without a signature; nil makes an unsigned
	// commit.
	Sign func(data []byte) ([]byte, error)
	// Context, when set, stops the commit while the branch has not moved
	// yet: Commit then fails with an error wrapping ErrInterrupted. Once
	// the branch moved, the working tree and index are brought up to date
	// whatever Context says.
	Context context.Context
}

// Commit writes a commit applying req.Changes to the tree of the first
// parent, then moves req.Branch from the first parent to it with a
// compare-and-swap: if the branch no longer points at the first parent the
// error wraps ErrRaced and nothing moves. Only the trees on changed paths are
// rewritten. If HEAD is req.Branch in a repository with a working tree, the
// changed paths are checked first (an error wrapping ErrDirty when that
// would overwrite uncommitted work) and brought up to date in the working
// tree and the index after the branch moved; if that last step fails the
// new commit's hash comes with an error wrapping ErrStaleWorktree. A branch
// checked out in another working tree of the repository is refused.
func (r *Repo) Commit(req CommitRequest) (plumbing.Hash, error) {
	branch, err := branchName(string(req.Branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing: %w", err)
	}
	c, changes, err := r.prepareCommit(req)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing to %s: %w", branch, err)
	}
	expected := plumbing.ZeroHash
	if len(c.Parents) > 0 {
		expected = c.Parents[0]
	}

	// Fail early, before writing anything, if the branch has moved already.
	cur, err := r.refOrZero(branch)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing to %s: %w", branch, err)
	}
	if err := checkOld(refUpdate{name: branch, old: expected}, cur); err != nil {
		return plumbing.ZeroHash, err
	}

	if err := interrupted(req.Context, "committing to "+branch.String()); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := r.writeCommit(c, changes, req.Sign)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing to %s: %w", branch, err)
	}
	faultPoint("objects-written")

	wt, err := r.worktreeFor(branch)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing to %s: %w", branch, err)
	}
	paths := make([]string, len(changes))
	for i, ch := range changes {
		paths[i] = ch.Path
	}
	if wt != nil {
		defer wt.close()
		if err := wt.check(paths); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("committing to %s: %w", branch, err)
		}
	}

	subject, _, _ := strings.Cut(c.Message, "\n")
	u := refUpdate{name: branch, old: expected, new: h, who: c.Committer, why: "commit: " + subject}
	moved, err := r.moveCheckedOut(req.Context, wt, u, c.Tree, changes)
	if !moved {
		return plumbing.ZeroHash, err
	}
	if err != nil {
		return h, fmt.Errorf("committing to %s: branch moved to %s but %w: %w (the next tally command finishes the checkout)", branch, h, ErrStaleWorktree, err)
	}
	return h, nil
}

// prepareCommit checks a request and returns the commit to write (without
// its tree) and the changes sorted by path.
func (r *Repo) prepareCommit(req CommitRequest) (*CommitInfo, []Change, error) {
	c := &CommitInfo{Author: req.Author, Committer: req.Committer, Message: req.Message}
	switch {
	case len(req.Parents) == 1 && req.Parents[0].IsZero():
	case len(req.Parents) > 0:
		for i, p := range req.Parents {
			if p.IsZero() {
				return nil, nil, fmt.Errorf("parent %d is the zero hash", i+1)
			}
			if _, err := r.ReadCommit(p); err != nil {
				return nil, nil, fmt.Errorf("parent %d: %w", i+1, err)
			}
		}
		c.Parents = req.Parents
	}
	if c.Author.When.IsZero() {
		c.Author.When = r.now()
	}
	if c.Committer.Name == "" && c.Committer.Email == "" {
		c.Committer = c.Author
	} else if c.Committer.When.IsZero() {
		c.Committer.When = r.now()
	}
	if err := checkIdentity("author", c.Author); err != nil {
		return nil, nil, err
	}
	if err := checkIdentity("committer", c.Committer); err != nil {
		return nil, nil, err
	}
	if strings.IndexByte(c.Message, 0) >= 0 {
		return nil, nil, errors.New("message contains a NUL byte")
	}
	if c.Message != "" && !strings.HasSuffix(c.Message, "\n") {
		c.Message += "\n"
	}

	changes := append([]Change(nil), req.Changes...)
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	seen := make(map[string]bool, len(changes))
	for i, ch := range changes {
		if err := checkPath(ch.Path); err != nil {
			return nil, nil, err
		}
		if i > 0 && changes[i-1].Path == ch.Path {
			return nil, nil, fmt.Errorf("path %q changed twice: %w", ch.Path, ErrUnsafePath)
		}
		seen[ch.Path] = true
	}
	for _, ch := range changes {
		for dir := ch.Path; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			if dir = dir[:i]; seen[dir] {
				return nil, nil, fmt.Errorf("path %q is both a file and a directory: %w", dir, ErrUnsafePath)
			}
		}
	}
	return c, changes, nil
}

// writeCommit writes commit c with its tree made by applying changes to the
// first parent's tree, signed by sign when not nil, and returns its id.
func (r *Repo) writeCommit(c *CommitInfo, changes []Change, sign func([]byte) ([]byte, error)) (plumbing.Hash, error) {
	base := plumbing.ZeroHash
	if len(c.Parents) > 0 {
		parent, err := r.ReadCommit(c.Parents[0])
		if err != nil {
			return plumbing.ZeroHash, err
		}
		base = parent.Tree
	}
	batch := &objectBatch{}
	var err error
	if c.Tree, err = r.writeChanges(batch, base, changes); err != nil {
		return plumbing.ZeroHash, err
	}
	data := encodeCommit(c, nil)
	if sign != nil {
		sig, err := sign(data)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing: %w", err)
		}
		if err := checkArmor(sig); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing: %w", err)
		}
		data = encodeCommit(c, sig)
	}
	h := batch.add(plumbing.CommitObject, data)
	if err := r.writeBatch(batch); err != nil {
		return plumbing.ZeroHash, err
	}
	return h, nil
}

// writeChanges queues in batch the blobs of changes and the trees on their
// paths, starting from tree base, and returns the new root tree. Trees off
// the changed paths are neither read nor written.
func (r *Repo) writeChanges(batch *objectBatch, base plumbing.Hash, changes []Change) (plumbing.Hash, error) {
	pending := make([]pendingChange, len(changes))
	for i, ch := range changes {
		pending[i] = pendingChange{rest: ch.Path, change: &changes[i]}
		if !ch.Delete {
			pending[i].blob = batch.add(plumbing.BlobObject, ch.Data)
		}
	}
	root, _, err := r.rewriteTree(batch, base, "", pending)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return root, nil
}

// pendingChange is a change still to apply below some directory: rest is
// its path relative to that directory.
type pendingChange struct {
	rest   string
	change *Change
	blob   plumbing.Hash
}

// rewriteTree applies changes (sorted by path, relative to dir) to tree and
// queues the new tree in batch, returning its id and number of entries; an
// empty subtree is not written.
func (r *Repo) rewriteTree(batch *objectBatch, tree plumbing.Hash, dir string, changes []pendingChange) (plumbing.Hash, int, error) {
	old, err := r.tree(tree)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	entries := append(make([]Entry, 0, len(old)+len(changes)), old...)
	var added []Entry // kept apart so that entries stays sorted for findEntry
	for len(changes) > 0 {
		name, _, deeper := strings.Cut(changes[0].rest, "/")
		n := 1
		for n < len(changes) && strings.HasPrefix(changes[n].rest, name+"/") {
			n++
		}
		group := changes[:n]
		changes = changes[n:]
		p := dir + name
		i := findEntry(entries, name)

		if !deeper {
			ch := group[0]
			switch {
			case ch.change.Delete && i < 0:
				return plumbing.ZeroHash, 0, fmt.Errorf("deleting %s: %w", p, fs.ErrNotExist)
			case i >= 0 && entries[i].IsDir():
				return plumbing.ZeroHash, 0, fmt.Errorf("writing %s: is a directory: %w", p, ErrUnsafePath)
			case ch.change.Delete:
				entries = append(entries[:i], entries[i+1:]...)
			case i >= 0 && !isFileMode(entries[i].Mode):
				return plumbing.ZeroHash, 0, fmt.Errorf("writing %s: replacing a %s: %w", p, modeName(entries[i].Mode), ErrUnsafePath)
			case i >= 0:
				entries[i] = Entry{Name: name, Hash: ch.blob, Mode: filemode.Regular}
			default:
				added = append(added, Entry{Name: name, Hash: ch.blob, Mode: filemode.Regular})
			}
			continue
		}

		sub := plumbing.ZeroHash
		if i >= 0 {
			if !entries[i].IsDir() {
				return plumbing.ZeroHash, 0, fmt.Errorf("writing below %s: is a %s: %w", p, modeName(entries[i].Mode), ErrUnsafePath)
			}
			sub = entries[i].Hash
		}
		for j := range group {
			group[j].rest = group[j].rest[len(name)+1:]
		}
		h, count, err := r.rewriteTree(batch, sub, p+"/", group)
		if err != nil {
			return plumbing.ZeroHash, 0, err
		}
		switch {
		case count == 0 && i >= 0:
			entries = append(entries[:i], entries[i+1:]...)
		case count == 0:
		case i >= 0:
			entries[i].Hash = h
		default:
			added = append(added, Entry{Name: name, Hash: h, Mode: filemode.Dir})
		}
	}
	if len(added) > 0 {
		entries = append(entries, added...)
		sortEntries(entries)
	}
	if len(entries) == 0 && dir != "" {
		return plumbing.ZeroHash, 0, nil
	}
	data := encodeTree(entries)
	h := plumbing.ComputeHash(plumbing.TreeObject, data)
	if h == tree {
		return h, len(entries), nil
	}
	batch.add(plumbing.TreeObject, data)
	r.trees.add(h, entries, len(data)+len(entries)*entryOverhead)
	return h, len(entries), nil
}

// modeName names a file mode for error messages.
func modeName(m filemode.FileMode) string {
	switch m {
	case filemode.Dir:
		return "directory"
	case filemode.Symlink:
		return "symbolic link"
	case filemode.Submodule:
		return "submodule"
	default:
		return "file"
	}
}

// refOrZero reads a reference that must hold a hash, zero when missing.
func (r *Repo) refOrZero(name plumbing.ReferenceName) (plumbing.Hash, error) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	return currentRef(r.storage.Reference(name))
}
