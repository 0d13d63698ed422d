//go:build !linux

package release

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// swapDir puts the directory tmp in place of dir. Without Linux's atomic
// exchange the old tree is renamed aside first: for a moment dir does not
// exist (a web server answers 404, never half a tree). tmp then holds the
// old tree.
func swapDir(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("swapping %s in: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(old, dir)
		return fmt.Errorf("swapping %s in: %w", dir, err)
	}
	return os.Rename(old, tmp)
}
