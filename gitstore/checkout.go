package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// intentFile is the checkout intent record, in the (per-worktree) git
// directory. Commit and SetBranch write it, holding index.lock, before they
// move the checked-out branch, and remove it once the working tree and the
// index match the new commit. While it exists the checkout may be behind
// the branch on the paths that differ between its two commits; Recover
// finishes the job.
const intentFile = "tally/checkout-intent"

// maxIntentSize bounds the intent record read back: it is three short lines.
const maxIntentSize = 4096

// checkoutIntent is a move of the checked-out branch from old to new.
type checkoutIntent struct {
	branch   plumbing.ReferenceName
	old, new plumbing.Hash
}

func (in checkoutIntent) encode() []byte {
	return fmt.Appendf(nil, "tally checkout intent v1\nbranch %s\nold %s\nnew %s\n", in.branch, in.old, in.new)
}

func parseIntent(data []byte) (checkoutIntent, error) {
	var in checkoutIntent
	lines := strings.Split(string(data), "\n")
	if len(lines) != 5 || lines[0] != "tally checkout intent v1" || lines[4] != "" {
		return in, fmt.Errorf("not a checkout intent record: %w", ErrBadObject)
	}
	branch, ok1 := strings.CutPrefix(lines[1], "branch ")
	old, ok2 := strings.CutPrefix(lines[2], "old ")
	next, ok3 := strings.CutPrefix(lines[3], "new ")
	if !ok1 || !ok2 || !ok3 || !plumbing.IsHash(old) || !plumbing.IsHash(next) {
		return in, fmt.Errorf("not a checkout intent record: %w", ErrBadObject)
	}
	in.branch = plumbing.ReferenceName(branch)
	if !in.branch.IsBranch() || in.branch.Validate() != nil {
		return in, fmt.Errorf("checkout intent record: bad branch %q: %w", branch, ErrBadObject)
	}
	in.old, in.new = plumbing.NewHash(old), plumbing.NewHash(next)
	return in, nil
}

// writeIntent records in durably (written, synced, renamed into place).
func (r *Repo) writeIntent(in checkoutIntent) error {
	p := filepath.Join(r.gitDir, filepath.FromSlash(intentFile))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	_, err = f.Write(in.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", p, err)
	}
	faultPoint("intent-written")
	return nil
}

// clearIntent removes the intent record.
func (r *Repo) clearIntent() {
	_ = os.Remove(filepath.Join(r.gitDir, filepath.FromSlash(intentFile)))
}

// readIntent returns the intent record, if there is one.
func (r *Repo) readIntent() (checkoutIntent, bool, error) {
	p := filepath.Join(r.gitDir, filepath.FromSlash(intentFile))
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return checkoutIntent{}, false, nil
	}
	if err != nil {
		return checkoutIntent{}, false, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(bufio.NewReader(&limitedFile{f, maxIntentSize + 1})); err != nil {
		return checkoutIntent{}, false, fmt.Errorf("reading %s: %w", p, err)
	}
	in, err := parseIntent(buf.Bytes())
	if err != nil {
		return checkoutIntent{}, true, fmt.Errorf("reading %s: %w", p, err)
	}
	return in, true, nil
}

type limitedFile struct {
	f *os.File
	n int64
}

func (l *limitedFile) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// interrupted returns an error wrapping ErrInterrupted when ctx (which may
// be nil) is done.
func interrupted(ctx context.Context, what string) error {
	if ctx == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrInterrupted, err)
	}
	return nil
}

// moveCheckedOut moves u.name and, when wt is not nil (the branch is checked
// out here), brings the working tree and index up to date with tree by
// changes, under an intent record: a process killed at any point leaves
// either the old state or one that Recover completes. ctx is checked last
// before the branch moves; once it has moved, the checkout is finished
// whatever ctx says.
func (r *Repo) moveCheckedOut(ctx context.Context, wt *worktree, u refUpdate, tree plumbing.Hash, changes []Change) (moved bool, err error) {
	intent := wt != nil && r.gitDir != "" // a repository in memory does not survive its process
	if intent {
		if err := r.writeIntent(checkoutIntent{branch: u.name, old: u.old, new: u.new}); err != nil {
			return false, err
		}
	}
	if err := interrupted(ctx, "updating "+string(u.name)); err != nil {
		if intent {
			r.clearIntent()
		}
		return false, err
	}
	if err := r.updateRef(u); err != nil {
		if intent {
			r.clearIntent()
		}
		return false, err
	}
	if wt == nil {
		return true, nil
	}
	if err := wt.update(r, tree, changes); err != nil {
		// The intent stays: the next Recover finishes the job.
		return true, err
	}
	if intent {
		r.clearIntent()
	}
	faultPoint("checkout-done")
	return true, nil
}

// Recovery says what Recover found and repaired.
type Recovery struct {
	// Locks are the lock files (index.lock, a reference's .lock) that a
	// tally process which is gone had taken, now removed.
	Locks []string
	// Branch and Commit are set when an interrupted move of the checked-out
	// branch was found: the checkout was brought to Commit (HEAD's tip).
	Branch plumbing.ReferenceName
	Commit plumbing.Hash
	// Moved reports whether the interrupted process had moved the branch
	// (else it stopped before, and only its leftovers were removed).
	Moved bool
	// Updated counts the paths written or deleted in the working tree or
	// the index; Kept those left as they were because they hold changes
	// nobody committed (they show in git status).
	Updated, Kept int
	// TempFiles counts the leftover temporary files removed.
	TempFiles int
}

// Changed reports whether Recover changed anything.
func (rc *Recovery) Changed() bool {
	return rc != nil && (len(rc.Locks) > 0 || rc.Updated > 0 || rc.TempFiles > 0)
}

// String says in one line what was repaired ("" when nothing was).
func (rc *Recovery) String() string {
	if !rc.Changed() {
		return ""
	}
	var parts []string
	if rc.Updated > 0 || rc.TempFiles > 0 || rc.Kept > 0 {
		what := fmt.Sprintf("brought %d path(s) of the working tree and index to %s on %s", rc.Updated, short(rc.Commit), rc.Branch.Short())
		if !rc.Moved {
			what = fmt.Sprintf("put %d path(s) of the working tree and index back to %s on %s (the branch had not moved)", rc.Updated, short(rc.Commit), rc.Branch.Short())
		}
		parts = append(parts, what)
		if rc.Kept > 0 {
			parts = append(parts, fmt.Sprintf("kept %d path(s) with uncommitted changes", rc.Kept))
		}
	}
	if rc.TempFiles > 0 {
		parts = append(parts, fmt.Sprintf("removed %d temporary file(s)", rc.TempFiles))
	}
	if len(rc.Locks) > 0 {
		names := make([]string, len(rc.Locks))
		for i, l := range rc.Locks {
			names[i] = filepath.Base(l)
		}
		parts = append(parts, "removed the stale "+strings.Join(names, ", "))
	}
	return "an interrupted tally left the repository unfinished: " + strings.Join(parts, "; ")
}

func short(h plumbing.Hash) string { return h.String()[:12] }

// Recover finishes what an interrupted tally (killed, or out of power) left
// unfinished in this repository: it removes the lock files such a process
// had taken (never one of a process still running, or one git took), and
// when the process was moving the checked-out branch it brings the working
// tree and index of the paths that move touched to HEAD, removing the
// temporary files it left. Files holding changes nobody committed are kept.
// Every tally command calls it first; it costs a directory listing and a
// stat when there is nothing to do, and it never waits: a checkout whose
// index another process holds is left to that process.
func (r *Repo) Recover() (*Recovery, error) {
	rc := &Recovery{}
	var err error
	if rc.Locks, err = r.staleLocks(); err != nil {
		return rc, fmt.Errorf("recovering: %w", err)
	}
	if r.worktree == nil || r.gitDir == "" {
		return rc, nil
	}
	if _, found, _ := r.readIntent(); !found {
		return rc, nil
	}
	wt, err := r.openWorktree(true)
	if errors.Is(err, ErrLocked) {
		return rc, nil // its writer is still at work, or git is
	}
	if err != nil {
		return rc, fmt.Errorf("recovering the checkout: %w", err)
	}
	defer wt.close()
	in, found, err := r.readIntent()
	if !found {
		return rc, nil // finished meanwhile
	}
	if err != nil {
		// A record tally cannot read was not finished by tally: nothing is
		// known of the move, so only the record goes.
		r.clearIntent()
		return rc, fmt.Errorf("recovering the checkout: %w (removed)", err)
	}
	branch, tip, err := r.Head()
	if err != nil {
		return rc, fmt.Errorf("recovering the checkout: %w", err)
	}
	rc.Branch, rc.Commit, rc.Moved = branch, tip, tip != in.old
	if err := wt.reconcile(in, rc); err != nil {
		return rc, fmt.Errorf("recovering the checkout of %s: %w", in.branch.Short(), err)
	}
	r.clearIntent()
	_ = os.Remove(filepath.Join(r.gitDir, filepath.FromSlash(intentFile)) + ".tmp")
	return rc, nil
}

// reconcile brings the working tree and index of every path that differs
// between the intent's two commits to HEAD's tree (wt.headTree).
func (wt *worktree) reconcile(in checkoutIntent, rc *Recovery) error {
	r := wt.repo
	treeOf := func(c plumbing.Hash) (plumbing.Hash, error) {
		if c.IsZero() {
			return plumbing.ZeroHash, nil
		}
		info, err := r.ReadCommit(c)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return info.Tree, nil
	}
	oldTree, err := treeOf(in.old)
	if err != nil {
		return err
	}
	newTree, err := treeOf(in.new)
	if err != nil {
		return err
	}
	diff, err := r.Diff(oldTree, newTree)
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	changed := false
	for _, d := range diff {
		dirs[path.Dir(d.Path)] = true
		c, err := wt.reconcilePath(d)
		if err != nil {
			return err
		}
		switch c {
		case pathUpdated:
			rc.Updated++
			changed = true
		case pathKept:
			rc.Kept++
			changed = true
		}
	}
	// Leftover temporary files of writeFile, in the directories written.
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		entries, err := wt.fs.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".tally-") && strings.HasSuffix(n, ".tmp") && e.Mode().IsRegular() {
				if err := wt.fs.Remove(path.Join(d, n)); err == nil {
					rc.TempFiles++
				}
			}
		}
		wt.pruneDirs(path.Join(d, "x"))
	}
	if !changed {
		return nil
	}
	return wt.writeIndex()
}

type pathResult int

const (
	pathOK pathResult = iota
	pathUpdated
	pathKept
)

// reconcilePath makes path d.Path in the working tree and index match
// HEAD's tree. A working-tree file that is neither the old nor the new
// version is the user's: it is kept, and its index entry gets no stat data,
// so git status shows it as modified.
func (wt *worktree) reconcilePath(d DiffEntry) (pathResult, error) {
	r := wt.repo
	p := d.Path
	want, err := r.lookup(wt.headTree, p)
	absent := errors.Is(err, fs.ErrNotExist)
	if err != nil && !absent {
		return pathOK, err
	}
	if !absent && want.IsDir() {
		absent = true // a directory now: its files are not this record's business
	}
	e, _ := wt.entry(p)
	var have plumbing.Hash // the working-tree file's blob id, zero when none
	fi, err := wt.fs.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return pathOK, fmt.Errorf("checking %s: %w", p, err)
	case fi.Mode().IsRegular():
		if have, err = wt.hashFile(p); err != nil {
			return pathOK, fmt.Errorf("checking %s: %w", p, err)
		}
	default:
		return pathKept, nil // a directory or link where a file was: not tally's
	}
	ours := have.IsZero() || have == d.OldHash || have == d.NewHash
	if absent {
		res := pathOK
		if !have.IsZero() {
			if !ours {
				if e != nil {
					wt.removeEntry(p)
				}
				return pathKept, nil
			}
			if err := wt.remove(p); err != nil {
				return pathOK, err
			}
			res = pathUpdated
		}
		if e != nil {
			wt.removeEntry(p)
			res = pathUpdated
		}
		return res, nil
	}
	if want.Mode != filemode.Regular {
		return pathKept, nil // tally writes only regular files into a working tree
	}
	res := pathOK
	if have != want.Hash {
		if !ours {
			ne := &index.Entry{Name: p, Hash: want.Hash, Mode: want.Mode}
			wt.setEntries([]*index.Entry{ne})
			return pathKept, nil
		}
		data, err := r.blob(want.Hash)
		if err != nil {
			return pathOK, fmt.Errorf("reading %s: %w", p, err)
		}
		if fi, err = wt.writeFile(p, data); err != nil {
			return pathOK, err
		}
		res = pathUpdated
	}
	if e == nil || e.Hash != want.Hash || e.Mode != want.Mode || res == pathUpdated {
		ne := &index.Entry{Name: p, Hash: want.Hash, Mode: want.Mode}
		fillStat(ne, fi)
		wt.setEntries([]*index.Entry{ne})
		res = pathUpdated
	}
	return res, nil
}

// pruneDirs removes the directories above p that are empty, as git does.
func (wt *worktree) pruneDirs(p string) {
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if err := wt.fs.Remove(dir); err != nil {
			break // not empty, or gone
		}
	}
}
