package gitstore

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// worktree is the working tree and index of a Repo while a Commit or a
// check uses them. For a commit it holds the index lock: the Repo's
// worktreeMu against other goroutines and, on disk, git's index.lock file
// against git and other tally processes.
type worktree struct {
	fs       billy.Filesystem
	headTree plumbing.Hash
	idx      *index.Index
	repo     *Repo

	lock    *ownedLock // index.lock while committing on disk
	release func()
}

// openWorktree reads the index and HEAD's tree. With lock set it takes the
// index lock first, to be released by wt.close.
func (r *Repo) openWorktree(lock bool) (_ *worktree, err error) {
	wt := &worktree{fs: r.worktree, repo: r, release: func() {}}
	if lock {
		r.worktreeMu.Lock()
		wt.release = r.worktreeMu.Unlock
		defer func() {
			if err != nil {
				wt.close()
			}
		}()
		if r.gitDir != "" {
			lockPath := filepath.Join(r.gitDir, "index.lock")
			l, err := r.takeLock(lockPath, 0)
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("%s exists: another git process is using the index (or one crashed: then remove the file): %w", lockPath, ErrLocked)
			}
			if err != nil {
				return nil, fmt.Errorf("locking the index: %w", err)
			}
			wt.lock = l
		}
	}
	if wt.idx, err = r.readIndex(); err != nil {
		return nil, err
	}
	_, tip, err := r.Head()
	if err != nil {
		return nil, err
	}
	if !tip.IsZero() {
		c, err := r.ReadCommit(tip)
		if err != nil {
			return nil, err
		}
		wt.headTree = c.Tree
	}
	return wt, nil
}

// close releases the index lock, if still held, without writing the index.
func (wt *worktree) close() {
	if wt.lock != nil {
		wt.lock.release()
		wt.lock = nil
	}
	wt.release()
	wt.release = func() {}
}

// worktreeFor returns the locked working tree if HEAD is branch in a
// repository with a working tree, else nil. It refuses a branch checked
// out in another working tree of the repository, as git does: moving it
// would leave that working tree's index describing the old commit.
func (r *Repo) worktreeFor(branch plumbing.ReferenceName) (*worktree, error) {
	head := plumbing.ReferenceName("")
	if r.worktree != nil {
		var err error
		if head, _, err = r.Head(); err != nil {
			return nil, err
		}
	}
	if head == branch {
		return r.openWorktree(true)
	}
	if where := r.checkedOutElsewhere(branch); where != "" {
		return nil, fmt.Errorf("%s is checked out in the working tree at %s: commit there", branch, where)
	}
	return nil, nil
}

// checkedOutElsewhere returns the working tree, other than this Repo's own,
// whose HEAD is branch: the main one or a linked one (git worktree add).
func (r *Repo) checkedOutElsewhere(branch plumbing.ReferenceName) string {
	if r.commonDir == "" {
		return ""
	}
	var heads []string // per-worktree git directories
	if r.commonDir != r.gitDir {
		heads = append(heads, r.commonDir)
	}
	linked, _ := filepath.Glob(filepath.Join(r.commonDir, "worktrees", "*"))
	for _, dir := range linked {
		if dir != r.gitDir {
			heads = append(heads, dir)
		}
	}
	want := "ref: " + string(branch)
	for _, dir := range heads {
		b, err := os.ReadFile(filepath.Join(dir, "HEAD"))
		if err != nil || strings.TrimSpace(string(b)) != want {
			continue
		}
		if dir == r.commonDir {
			if isBareDir(dir) {
				continue
			}
			return filepath.Dir(dir)
		}
		if gitdir, err := os.ReadFile(filepath.Join(dir, "gitdir")); err == nil {
			return filepath.Dir(strings.TrimSpace(string(gitdir)))
		}
		return dir
	}
	return ""
}

// isBareDir reports whether the git directory dir is configured bare.
func isBareDir(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "config"))
	if err != nil {
		return false
	}
	defer f.Close()
	cfg, err := config.ReadConfig(f)
	return err == nil && cfg.Core.IsBare
}

// readIndex reads the index: from the index file on disk, from the storer
// in memory. A missing index is empty.
func (r *Repo) readIndex() (*index.Index, error) {
	if r.gitDir == "" {
		r.storeMu.Lock()
		defer r.storeMu.Unlock()
		idx, err := r.storage.Index()
		if err != nil {
			return nil, fmt.Errorf("reading the index: %w", err)
		}
		return idx, nil
	}
	p := filepath.Join(r.gitDir, "index")
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &index.Index{Version: 2}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	idx := &index.Index{ModTime: fi.ModTime()}
	if err := index.NewDecoder(bufio.NewReaderSize(f, 1<<16)).Decode(idx); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return idx, nil
}

// writeIndex replaces the index: on disk by writing the locked index.lock
// and renaming it over the index, in memory through the storer.
func (wt *worktree) writeIndex() error {
	r := wt.repo
	// go-git writes no extensions; the cached trees would be stale anyway.
	wt.idx.Cache = nil
	wt.idx.ResolveUndo = nil
	wt.idx.EndOfIndexEntry = nil
	if wt.lock == nil {
		r.storeMu.Lock()
		defer r.storeMu.Unlock()
		if err := r.storage.SetIndex(wt.idx); err != nil {
			return fmt.Errorf("writing the index: %w", err)
		}
		return nil
	}
	bw := bufio.NewWriterSize(wt.lock.f, 1<<16)
	if err := index.NewEncoder(bw).Encode(wt.idx); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	faultPoint("index-lock-written")
	l := wt.lock
	wt.lock = nil
	if err := l.commit(filepath.Join(r.gitDir, "index")); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	faultPoint("index-written")
	return nil
}

// entry finds the stage-0 index entry for p, and reports whether p has
// entries in other stages (an unresolved merge).
func (wt *worktree) entry(p string) (e *index.Entry, unmerged bool) {
	entries := wt.idx.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Name >= p })
	for ; i < len(entries) && entries[i].Name == p; i++ {
		if entries[i].Stage != 0 {
			unmerged = true
		} else {
			e = entries[i]
		}
	}
	return e, unmerged
}

// hasEntriesBelow reports whether the index tracks anything below dir.
func (wt *worktree) hasEntriesBelow(dir string) bool {
	entries := wt.idx.Entries
	prefix := dir + "/"
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Name >= prefix })
	return i < len(entries) && strings.HasPrefix(entries[i].Name, prefix)
}

// dirty builds the error for a path that would lose uncommitted work.
func dirty(p, why string) error {
	return fmt.Errorf("%s: %s: %w", p, why, ErrDirty)
}

// check refuses, with an error wrapping ErrDirty, when writing or deleting
// one of paths would overwrite something uncommitted: a change staged in the
// index, an untracked file, or a file that differs from the index.
func (wt *worktree) check(paths []string) error {
	for _, p := range paths {
		if err := checkPath(p); err != nil {
			return err
		}
		if err := wt.checkIndex(p); err != nil {
			return err
		}
		if err := wt.checkFile(p); err != nil {
			return err
		}
	}
	return nil
}

// checkIndex compares the index entry for p with HEAD's tree.
func (wt *worktree) checkIndex(p string) error {
	e, unmerged := wt.entry(p)
	if unmerged {
		return dirty(p, "unmerged in the index")
	}
	if wt.hasEntriesBelow(p) {
		return dirty(p, "a directory in the index")
	}
	head, err := wt.repo.lookup(wt.headTree, p)
	if errors.Is(err, fs.ErrNotExist) {
		if e != nil {
			return dirty(p, "added to the index but not committed")
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", p, err)
	}
	switch {
	case e == nil:
		return dirty(p, "deleted in the index but not committed")
	case e.IntentToAdd:
		return dirty(p, "marked with git add -N")
	case e.Hash != head.Hash || e.Mode != head.Mode:
		return dirty(p, "changed in the index but not committed")
	}
	return nil
}

// checkFile compares p in the working tree with its index entry.
func (wt *worktree) checkFile(p string) error {
	parts := splitPath(p)
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		fi, err := wt.fs.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return dirty(p, dir+" is a symbolic link in the working tree")
		case !fi.IsDir():
			return dirty(p, dir+" is a file in the working tree")
		}
	}
	fi, err := wt.fs.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", p, err)
	}
	e, _ := wt.entry(p)
	switch {
	case fi.IsDir():
		return dirty(p, "a directory in the working tree")
	case !fi.Mode().IsRegular():
		return dirty(p, "not a regular file in the working tree")
	case e == nil:
		return dirty(p, "untracked file in the working tree")
	}
	same, err := wt.unchanged(p, e, fi)
	if err != nil {
		return fmt.Errorf("checking %s: %w", p, err)
	}
	if !same {
		return dirty(p, "modified in the working tree")
	}
	return nil
}

// unchanged reports whether the regular file p, with stat data fi, still
// has the contents and mode its index entry records: by stat data alone
// when the entry is not racily clean, by hashing the file otherwise.
func (wt *worktree) unchanged(p string, e *index.Entry, fi fs.FileInfo) (bool, error) {
	wantExec := e.Mode == filemode.Executable
	if isExec := fi.Mode()&0o100 != 0; isExec != wantExec || !isFileMode(e.Mode) {
		return false, nil
	}
	var now index.Entry
	fillStat(&now, fi)
	if int64(now.Size) != int64(e.Size) {
		return false, nil
	}
	racy := wt.idx.ModTime.IsZero() || !e.ModifiedAt.Before(wt.idx.ModTime)
	if !racy && sameStat(&now, e) {
		return true, nil
	}
	h, err := wt.hashFile(p)
	if err != nil {
		return false, err
	}
	return h == e.Hash, nil
}

// sameStat compares the stat data git compares (core.trustctime and
// core.checkStat at their defaults).
func sameStat(a, b *index.Entry) bool {
	return a.ModifiedAt.Equal(b.ModifiedAt) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.Size == b.Size && a.Inode == b.Inode && a.UID == b.UID && a.GID == b.GID
}

// hashFile returns the blob id of the file p in the working tree.
func (wt *worktree) hashFile(p string) (plumbing.Hash, error) {
	f, err := wt.fs.Open(p)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxObjectSize+1))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return plumbing.ComputeHash(plumbing.BlobObject, data), nil
}

// update writes and deletes the changed files in the working tree, each
// file atomically, then records them in the index and writes it. Nothing
// outside the changed paths is looked at. Deletions go first, since they
// prune directories that writes may create again.
func (wt *worktree) update(r *Repo, tree plumbing.Hash, changes []Change) error {
	defer wt.close()
	for _, ch := range changes {
		if ch.Delete {
			if err := wt.remove(ch.Path); err != nil {
				return err
			}
		}
	}
	entries := make([]*index.Entry, len(changes))
	err := wt.parallel(len(changes), func(i int) error {
		ch := changes[i]
		if ch.Delete {
			return nil
		}
		e, err := r.lookup(tree, ch.Path)
		if err != nil {
			return fmt.Errorf("updating %s: %w", ch.Path, err)
		}
		fi, err := wt.writeFile(ch.Path, ch.Data)
		if err != nil {
			return err
		}
		entries[i] = &index.Entry{Name: ch.Path, Hash: e.Hash, Mode: filemode.Regular}
		fillStat(entries[i], fi)
		return nil
	})
	if err != nil {
		return err
	}
	wt.setEntries(entries)
	return wt.writeIndex()
}

// fileWriters is how many files update writes at once on disk, where
// creating a file waits on the file system more than on the processor.
const fileWriters = 4

// parallel calls fn for 0 <= i < n, on several goroutines for a working
// tree on disk (a memory file system is not safe for concurrent use), and
// returns the first error.
func (wt *worktree) parallel(n int, fn func(i int) error) error {
	workers := 1
	if wt.lock != nil {
		workers = min(fileWriters, n)
	}
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if errs[w] = fn(i); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// setEntries replaces the stage-0 entries with the names of the non-nil
// entries, or adds them, and sorts the index.
func (wt *worktree) setEntries(entries []*index.Entry) {
	sorted := wt.idx.Entries
	var added []*index.Entry // apart, so that sorted stays sorted and in place
	for _, e := range entries {
		if e == nil {
			continue
		}
		i := sort.Search(len(sorted), func(i int) bool { return sorted[i].Name >= e.Name })
		if i < len(sorted) && sorted[i].Name == e.Name && sorted[i].Stage == 0 {
			sorted[i] = e
		} else {
			added = append(added, e)
		}
	}
	all := append(sorted, added...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	wt.idx.Entries = all
}

// removeEntry drops the entries for name.
func (wt *worktree) removeEntry(name string) {
	entries := wt.idx.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Name >= name })
	j := i
	for j < len(entries) && entries[j].Name == name {
		j++
	}
	wt.idx.Entries = append(entries[:i], entries[j:]...)
}

// writeFile replaces p atomically: it writes a temporary file in the same
// directory and renames it over p. It refuses to write through a symbolic
// link. It returns the new file's stat data.
func (wt *worktree) writeFile(p string, data []byte) (fs.FileInfo, error) {
	dir := path.Dir(p)
	if err := wt.mkdirs(dir); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(dir, ".tally-"+hex.EncodeToString(suffix[:])+".tmp")
	f, err := wt.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	faultPoint("worktree-tmp-created")
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = wt.fs.Rename(tmp, p)
	}
	if err != nil {
		_ = wt.fs.Remove(tmp)
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	faultPoint("worktree-file-written")
	fi, err := wt.fs.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	return fi, nil
}

// mkdirs creates dir and its parents, refusing symbolic links and files on
// the way.
func (wt *worktree) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	parts := splitPath(dir)
	for i := range parts {
		d := strings.Join(parts[:i+1], "/")
		fi, err := wt.fs.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) {
			if err := wt.fs.MkdirAll(d, 0o777); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is not a directory", d)
		}
	}
	return nil
}

// remove deletes p from the working tree and the index, then the
// directories it leaves empty, as git does.
func (wt *worktree) remove(p string) error {
	if err := wt.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", p, err)
	}
	faultPoint("worktree-file-deleted")
	wt.removeEntry(p)
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if err := wt.fs.Remove(dir); err != nil {
			break // not empty, or gone
		}
	}
	return nil
}

// CheckPaths refuses, with an error wrapping ErrDirty that names the path,
// when writing or deleting any of paths in the working tree would overwrite
// something not committed: a change staged in the index, an untracked file
// or directory, or a tracked file whose contents differ from the index. It
// reads only those paths (stat, and a hash when stat cannot tell) and is a
// no-op for a bare repository.
func (r *Repo) CheckPaths(paths []string) error {
	if r.worktree == nil {
		return nil
	}
	wt, err := r.openWorktree(false)
	if err != nil {
		return err
	}
	return wt.check(paths)
}

// Clean returns nil when the index matches HEAD's tree and no tracked file
// in the working tree differs from the index, else an error wrapping
// ErrDirty naming the first difference. Untracked files are ignored. It
// stats every tracked file and hashes only those whose stat data cannot
// vouch for them (BenchmarkClean20000: about 0.1 s for 20,000 files, from
// opening the repository on). A bare repository is clean.
func (r *Repo) Clean() error {
	if r.worktree == nil {
		return nil
	}
	wt, err := r.openWorktree(false)
	if err != nil {
		return err
	}
	if err := wt.indexMatchesHead(); err != nil {
		return err
	}
	for _, e := range wt.idx.Entries {
		if e.SkipWorktree || e.Mode == filemode.Submodule {
			continue
		}
		fi, err := wt.fs.Lstat(e.Name)
		if errors.Is(err, fs.ErrNotExist) {
			return dirty(e.Name, "deleted in the working tree")
		}
		if err != nil {
			return fmt.Errorf("checking %s: %w", e.Name, err)
		}
		if e.Mode == filemode.Symlink {
			if fi.Mode()&fs.ModeSymlink == 0 {
				return dirty(e.Name, "no longer a symbolic link")
			}
			continue // the link target is not compared
		}
		if !fi.Mode().IsRegular() {
			return dirty(e.Name, "not a regular file in the working tree")
		}
		same, err := wt.unchanged(e.Name, e, fi)
		if err != nil {
			return fmt.Errorf("checking %s: %w", e.Name, err)
		}
		if !same {
			return dirty(e.Name, "modified in the working tree")
		}
	}
	return nil
}

// indexMatchesHead compares the index entries with the files of HEAD's tree,
// both in git's path order.
func (wt *worktree) indexMatchesHead() error {
	entries := wt.idx.Entries
	i := 0
	err := wt.repo.walk(wt.headTree, "", func(p string, e Entry) error {
		if e.IsDir() {
			return nil
		}
		if i >= len(entries) || entries[i].Name > p {
			return dirty(p, "deleted in the index but not committed")
		}
		ie := entries[i]
		switch {
		case ie.Stage != 0:
			return dirty(ie.Name, "unmerged in the index")
		case ie.Name < p:
			return dirty(ie.Name, "added to the index but not committed")
		case ie.IntentToAdd:
			return dirty(ie.Name, "marked with git add -N")
		case ie.Hash != e.Hash || ie.Mode != e.Mode:
			return dirty(ie.Name, "changed in the index but not committed")
		}
		i++
		return nil
	})
	if err != nil {
		return err
	}
	if i < len(entries) {
		return dirty(entries[i].Name, "added to the index but not committed")
	}
	return nil
}
