package release

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// swapDir puts the directory tmp in place of dir: a rename when dir does
// not exist, else an atomic exchange (renameat2 RENAME_EXCHANGE), after
// which tmp holds the old tree.
func swapDir(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("swapping %s in: %w", dir, err)
	}
	return nil
}
