package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Entry is one entry of a tree: a file, a symbolic link, a submodule or a
// directory. Callers check Mode to refuse what they do not expect.
type Entry struct {
	// Name is the entry's name within its directory (no slash).
	Name string
	// Hash is the id of the blob, tree or (for a submodule) commit.
	Hash plumbing.Hash
	// Mode is the git file mode: filemode.Regular, Executable, Symlink,
	// Submodule, Dir (or the old Deprecated).
	Mode filemode.FileMode
}

// IsDir reports whether the entry is a directory (a tree).
func (e Entry) IsDir() bool { return e.Mode == filemode.Dir }

// maxTreeEntries bounds how many entries one tree may have; a tree that size
// is already some 2.5 MB and no signatures repository needs more.
const maxTreeEntries = 1 << 20

// parseTree decodes the contents of a tree object strictly, the way git fsck
// judges it: known modes written without leading zeros, names that checkName
// accepts, entries in git's order with no name twice.
func parseTree(data []byte) ([]Entry, error) {
	var entries []Entry
	for len(data) > 0 {
		if len(entries) == maxTreeEntries {
			return nil, fmt.Errorf("tree has more than %d entries: %w", maxTreeEntries, ErrBadObject)
		}
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("tree entry %d: no mode: %w", len(entries), ErrBadObject)
		}
		mode, err := parseMode(data[:sp])
		if err != nil {
			return nil, fmt.Errorf("tree entry %d: %w", len(entries), err)
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul < 0 {
			return nil, fmt.Errorf("tree entry %d: no name terminator: %w", len(entries), ErrBadObject)
		}
		name := string(data[:nul])
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("tree entry %d: %w: %w", len(entries), ErrBadObject, err)
		}
		data = data[nul+1:]
		if len(data) < len(plumbing.ZeroHash) {
			return nil, fmt.Errorf("tree entry %q: truncated hash: %w", name, ErrBadObject)
		}
		var h plumbing.Hash
		copy(h[:], data)
		data = data[len(h):]
		e := Entry{Name: name, Hash: h, Mode: mode}
		if n := len(entries); n > 0 && compareEntries(entries[n-1], e) >= 0 {
			return nil, fmt.Errorf("tree entry %q: out of order or repeated: %w", name, ErrBadObject)
		}
		if e.IsDir() && hasFileNamed(entries, name) {
			return nil, fmt.Errorf("tree entry %q: both a file and a directory: %w", name, ErrBadObject)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parseMode parses a tree entry mode, accepting only the modes git writes.
func parseMode(b []byte) (filemode.FileMode, error) {
	if len(b) == 0 || len(b) > 6 || b[0] == '0' {
		return 0, fmt.Errorf("bad mode %q: %w", b, ErrBadObject)
	}
	n, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return 0, fmt.Errorf("bad mode %q: %w", b, ErrBadObject)
	}
	switch m := filemode.FileMode(n); m {
	case filemode.Dir, filemode.Regular, filemode.Executable, filemode.Deprecated,
		filemode.Symlink, filemode.Submodule:
		return m, nil
	default:
		return 0, fmt.Errorf("unknown mode %q: %w", b, ErrBadObject)
	}
}

// encodeTree encodes entries, which must be sorted by compareEntries, as the
// contents of a tree object.
func encodeTree(entries []Entry) []byte {
	size := 0
	for _, e := range entries {
		size += 6 + 1 + len(e.Name) + 1 + len(e.Hash)
	}
	buf := make([]byte, 0, size)
	for _, e := range entries {
		buf = strconv.AppendUint(buf, uint64(e.Mode), 8)
		buf = append(buf, ' ')
		buf = append(buf, e.Name...)
		buf = append(buf, 0)
		buf = append(buf, e.Hash[:]...)
	}
	return buf
}

// compareEntries orders tree entries the way git does: by name, where a
// directory's name compares as if it ended in a slash.
func compareEntries(a, b Entry) int {
	return compareNames(a.Name, a.IsDir(), b.Name, b.IsDir())
}

func compareNames(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	ca, cb := nameEnd(a, n, aDir), nameEnd(b, n, bDir)
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

// nameEnd is the byte git compares after the common prefix of two names.
func nameEnd(name string, n int, dir bool) int {
	switch {
	case n < len(name):
		return int(name[n])
	case dir:
		return '/'
	}
	return 0
}

// sortEntries sorts entries in git's tree order.
func sortEntries(entries []Entry) {
	sort.Slice(entries, func(i, j int) bool { return compareEntries(entries[i], entries[j]) < 0 })
}

// findEntry returns the index of the entry called name in sorted entries,
// or -1.
func findEntry(entries []Entry, name string) int {
	for _, dir := range []bool{false, true} {
		i := sort.Search(len(entries), func(i int) bool {
			return compareNames(entries[i].Name, entries[i].IsDir(), name, dir) >= 0
		})
		if i < len(entries) && entries[i].Name == name {
			return i
		}
	}
	return -1
}

// hasFileNamed reports whether sorted entries hold a non-directory named name.
func hasFileNamed(entries []Entry, name string) bool {
	i := sort.Search(len(entries), func(i int) bool {
		return compareNames(entries[i].Name, entries[i].IsDir(), name, false) >= 0
	})
	return i < len(entries) && entries[i].Name == name && !entries[i].IsDir()
}

// BadEntry is a tree entry whose name is not a safe path component (a
// newline or another control character, a backslash, ".", "..", ".git"):
// ListTree reports it instead of failing the whole tree, so that a reader
// can judge everything else. tally never writes such a path.
type BadEntry struct {
	Entry
	// Reason says what is wrong with the name.
	Reason string
}

// parseTreeLenient is parseTree where an entry with an unsafe name is
// returned in bad instead of failing the tree; every other malformation
// still fails it.
func parseTreeLenient(data []byte) (entries []Entry, bad []BadEntry, err error) {
	for len(data) > 0 {
		if len(entries)+len(bad) == maxTreeEntries {
			return nil, nil, fmt.Errorf("tree has more than %d entries: %w", maxTreeEntries, ErrBadObject)
		}
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, nil, fmt.Errorf("tree entry %d: no mode: %w", len(entries)+len(bad), ErrBadObject)
		}
		mode, err := parseMode(data[:sp])
		if err != nil {
			return nil, nil, fmt.Errorf("tree entry %d: %w", len(entries)+len(bad), err)
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul < 0 {
			return nil, nil, fmt.Errorf("tree entry %d: no name terminator: %w", len(entries)+len(bad), ErrBadObject)
		}
		name := string(data[:nul])
		data = data[nul+1:]
		if len(data) < len(plumbing.ZeroHash) {
			return nil, nil, fmt.Errorf("tree entry %q: truncated hash: %w", name, ErrBadObject)
		}
		var h plumbing.Hash
		copy(h[:], data)
		data = data[len(h):]
		e := Entry{Name: name, Hash: h, Mode: mode}
		if err := checkName(name); err != nil {
			bad = append(bad, BadEntry{Entry: e, Reason: err.Error()})
			continue
		}
		if n := len(entries); n > 0 && compareEntries(entries[n-1], e) >= 0 {
			return nil, nil, fmt.Errorf("tree entry %q: out of order or repeated: %w", name, ErrBadObject)
		}
		if e.IsDir() && hasFileNamed(entries, name) {
			return nil, nil, fmt.Errorf("tree entry %q: both a file and a directory: %w", name, ErrBadObject)
		}
		entries = append(entries, e)
	}
	return entries, bad, nil
}

// ListTree returns the entries of the tree with id h, in git's order, and
// separately those whose names are not safe path components (see
// BadEntry). A tree that is malformed otherwise is an error.
func (s *Snapshot) ListTree(h plumbing.Hash) ([]Entry, []BadEntry, error) {
	entries, err := s.repo.tree(h)
	if err == nil {
		return append([]Entry(nil), entries...), nil, nil
	}
	if !errors.Is(err, ErrUnsafePath) {
		return nil, nil, err
	}
	data, oerr := s.repo.object(plumbing.TreeObject, h)
	if oerr != nil {
		return nil, nil, oerr
	}
	entries, bad, perr := parseTreeLenient(data)
	if perr != nil {
		return nil, nil, fmt.Errorf("reading tree %s: %w", h, perr)
	}
	return entries, bad, nil
}
