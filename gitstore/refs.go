package gitstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// refUpdate is one compare-and-swap of a reference.
type refUpdate struct {
	name plumbing.ReferenceName
	old  plumbing.Hash // zero: the reference must not exist yet
	new  plumbing.Hash
	who  object.Signature // for the reflog
	why  string           // for the reflog
}

// errRefExists is returned by updateRef when old is zero but the reference
// exists; it wraps ErrRaced.
var errRefExists = fmt.Errorf("reference exists: %w", ErrRaced)

// updateRef moves a reference from u.old to u.new, or fails with an error
// wrapping ErrRaced and moves nothing. On disk it follows git's own locking
// protocol (an exclusive name.lock file renamed over the reference), so git
// processes working on the same repository see either the old or the new
// value, never a partial file, and never lose an update to tally or tally
// one to them.
func (r *Repo) updateRef(u refUpdate) error {
	if err := u.name.Validate(); err != nil || !strings.HasPrefix(string(u.name), "refs/") {
		return fmt.Errorf("updating %s: bad reference name", u.name)
	}
	if r.commonDir == "" {
		return r.updateMemoryRef(u)
	}
	return r.updateFileRef(u)
}

func (r *Repo) updateMemoryRef(u refUpdate) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	cur, err := currentRef(r.storage.Reference(u.name))
	if err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	if err := checkOld(u, cur); err != nil {
		return err
	}
	if err := r.storage.SetReference(plumbing.NewHashReference(u.name, u.new)); err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	return nil
}

// currentRef turns the result of reading a reference into its hash, zero
// when it does not exist.
func currentRef(ref *plumbing.Reference, err error) (plumbing.Hash, error) {
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if ref.Type() != plumbing.HashReference {
		return plumbing.ZeroHash, fmt.Errorf("a symbolic reference to %s", ref.Target())
	}
	return ref.Hash(), nil
}

func checkOld(u refUpdate, cur plumbing.Hash) error {
	switch {
	case cur == u.old:
		return nil
	case u.old.IsZero():
		return fmt.Errorf("creating %s: it points at %s: %w", u.name, cur, errRefExists)
	case cur.IsZero():
		return fmt.Errorf("updating %s: it no longer exists, expected %s: %w", u.name, u.old, ErrRaced)
	default:
		return fmt.Errorf("updating %s: it points at %s, expected %s: %w", u.name, cur, u.old, ErrRaced)
	}
}

func (r *Repo) updateFileRef(u refUpdate) error {
	path := filepath.Join(r.commonDir, filepath.FromSlash(string(u.name)))
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	// Goroutines of this process queue here; other processes meet the lock
	// file, which git waits for up to core.filesRefLockTimeout (100 ms).
	r.refMu.Lock()
	defer r.refMu.Unlock()
	lockPath := path + ".lock"
	lock, err := r.takeLock(lockPath, refLockTimeout)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("updating %s: %s exists: another git process is updating it (or one crashed: then remove the file): %w", u.name, lockPath, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	committed := false
	defer func() {
		if !committed {
			lock.release()
		}
	}()

	// Only now that the lock is held is the current value meaningful.
	r.storeMu.Lock()
	cur, err := currentRef(r.storage.Reference(u.name))
	r.storeMu.Unlock()
	if err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	if err := checkOld(u, cur); err != nil {
		return err
	}
	if _, err := lock.f.WriteString(u.new.String() + "\n"); err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	if err := lock.f.Sync(); err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	faultPoint("ref-lock-written")
	committed = true
	if err := lock.commit(path); err != nil {
		return fmt.Errorf("updating %s: %w", u.name, err)
	}
	faultPoint("ref-moved")
	r.appendReflogs(u)
	return nil
}

// appendReflogs records a reference update the way git does when
// core.logAllRefUpdates is at its default: for branches of a repository
// with a working tree, or wherever a log exists already, plus HEAD's log
// when HEAD points at the branch. The reflog only helps people recover, so
// failing to write it does not fail the update.
func (r *Repo) appendReflogs(u refUpdate) {
	line := fmt.Sprintf("%s %s %s\t%s\n", u.old, u.new, formatSignature(u.who), strings.ReplaceAll(u.why, "\n", " "))
	autocreate := !r.Bare() && u.name.IsBranch()
	appendLog(filepath.Join(r.commonDir, "logs", filepath.FromSlash(string(u.name))), line, autocreate)
	if branch, _, err := r.Head(); err == nil && branch == u.name {
		appendLog(filepath.Join(r.gitDir, "logs", "HEAD"), line, autocreate)
	}
}

func appendLog(path, line string, create bool) {
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		flags |= os.O_CREATE
		_ = os.MkdirAll(filepath.Dir(path), 0o777)
	}
	f, err := os.OpenFile(path, flags, 0o666)
	if err != nil {
		return
	}
	_, _ = f.WriteString(line)
	_ = f.Close()
}

// refLockTimeout is how long updateRef waits for another process's lock on a
// reference, as git does by default.
const refLockTimeout = 100 * time.Millisecond
