//go:build !linux

package gitstore

import (
	"io/fs"

	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// fillStat copies into an index entry the stat data git compares to decide
// whether a file may have changed without reading it. Outside Linux only the
// portable part is recorded; git then reads such files once to refresh them.
func fillStat(e *index.Entry, fi fs.FileInfo) {
	e.ModifiedAt = fi.ModTime()
	e.Size = uint32(fi.Size())
}
