package gitstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ownedLocksDir is where tally keeps a record of every git lock file
// (index.lock, refs/heads/main.lock) it holds, below the common git
// directory. A record is a hard link to the lock file itself, flocked for as
// long as its process holds the lock, so a later tally knows for certain
// that a lock file is one it took and that the process that took it is gone
// (the kernel drops an flock when its process dies, SIGKILL included).
const ownedLocksDir = "tally/locks"

// ownedLock is a git lock file created by this process. f is open on it (the
// record and the lock file are one inode), so writing f writes the lock file.
type ownedLock struct {
	path   string   // the lock file, such as .git/index.lock
	record string   // its hard link below ownedLocksDir
	f      *os.File // open for writing, flocked
}

// takeLock creates the git lock file path exclusively, as git does, and
// records it as tally's. It returns an error wrapping fs.ErrExist when path
// exists, retrying for up to wait.
func (r *Repo) takeLock(path string, wait time.Duration) (*ownedLock, error) {
	dir := filepath.Join(r.commonDir, filepath.FromSlash(ownedLocksDir))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	record, f, err := newLockRecord(dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ownedLock, error) {
		_ = f.Close()
		_ = os.Remove(record)
		return nil, err
	}
	// The lock file's name goes in a file beside the record (an extended
	// attribute would be neater, but not every file system has them).
	if err := os.WriteFile(record+".path", []byte(path), 0o666); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay *= 2 {
		err = os.Link(record, path)
		if !errors.Is(err, fs.ErrExist) || time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
	}
	if err != nil {
		_ = os.Remove(record + ".path")
		return fail(err)
	}
	faultPoint("lock-taken")
	return &ownedLock{path: path, record: record, f: f}, nil
}

// newLockRecord creates and flocks a new record file in dir. A recovering
// tally may flock a record in the moment between its creation and its
// owner's flock (and then remove it): the owner tries again with another.
func newLockRecord(dir string) (string, *os.File, error) {
	for attempt := 0; ; attempt++ {
		var suffix [8]byte
		_, _ = rand.Read(suffix[:])
		record := filepath.Join(dir, hex.EncodeToString(suffix[:]))
		f, err := os.OpenFile(record, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return "", nil, err
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return record, f, nil
		}
		_ = f.Close()
		_ = os.Remove(record)
		if attempt == 3 || !errors.Is(err, unix.EWOULDBLOCK) {
			return "", nil, fmt.Errorf("locking %s: %w", record, err)
		}
	}
}

// commit renames the lock file over target, as git's commit_lock_file does,
// after closing it.
func (l *ownedLock) commit(target string) error {
	err := l.f.Close()
	if err == nil {
		err = os.Rename(l.path, target)
	}
	l.forget()
	if err != nil {
		_ = os.Remove(l.path)
	}
	return err
}

// release removes the lock file without using it.
func (l *ownedLock) release() {
	_ = os.Remove(l.path)
	_ = l.f.Close()
	l.forget()
}

// forget removes the record (the flock goes with the descriptor).
func (l *ownedLock) forget() {
	_ = os.Remove(l.record + ".path")
	_ = os.Remove(l.record)
	_ = l.f.Close()
}

// staleLocks removes the lock files tally took in processes that are gone,
// and their records, and returns the lock files it removed. A lock file is
// removed only when it is still the very file that process created (the
// same inode as its record): one that git or another tally took since is
// left alone, as is every lock of a process still running.
func (r *Repo) staleLocks() ([]string, error) {
	if r.commonDir == "" {
		return nil, nil
	}
	dir := filepath.Join(r.commonDir, filepath.FromSlash(ownedLocksDir))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".path") {
			if _, err := os.Lstat(filepath.Join(dir, strings.TrimSuffix(name, ".path"))); errors.Is(err, fs.ErrNotExist) {
				_ = os.Remove(filepath.Join(dir, name)) // the record went first
			}
			continue
		}
		record := filepath.Join(dir, name)
		f, err := os.OpenFile(record, os.O_RDWR, 0)
		if err != nil {
			continue // removed meanwhile by its owner
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			continue // its process is alive (or this one holds it)
		}
		if target, err := os.ReadFile(record + ".path"); err == nil {
			lockFi, lerr := os.Lstat(string(target))
			recFi, rerr := f.Stat()
			if lerr == nil && rerr == nil && os.SameFile(lockFi, recFi) {
				if err := os.Remove(string(target)); err == nil {
					removed = append(removed, string(target))
				}
			}
		}
		_ = os.Remove(record + ".path")
		_ = os.Remove(record)
		_ = f.Close()
	}
	return removed, nil
}
