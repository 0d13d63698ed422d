package gitstore

import (
	"fmt"
	"strings"
)

// maxPathLength bounds the length of a path in a commit; git itself has no
// limit, but file systems do and nothing tally writes comes close.
const maxPathLength = 4096

// checkPath reports whether p is a clean relative slash-separated path that
// is safe to write into a tree and a working tree: not empty, not absolute,
// no empty, "." or ".." component, no component named .git (in any case),
// no backslash, NUL or other control character.
func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path: %w", ErrUnsafePath)
	}
	if len(p) > maxPathLength {
		return fmt.Errorf("path %.40q...: longer than %d bytes: %w", p, maxPathLength, ErrUnsafePath)
	}
	for rest := p; ; {
		name, tail, more := strings.Cut(rest, "/")
		if err := checkName(name); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// checkName reports whether name is acceptable as one component of a path
// or one entry of a tree.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty component: %w", ErrUnsafePath)
	case name == "." || name == "..":
		return fmt.Errorf("component %q: %w", name, ErrUnsafePath)
	case strings.EqualFold(name, ".git"):
		return fmt.Errorf("component %q names a git directory: %w", name, ErrUnsafePath)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '/' {
			return fmt.Errorf("component %q contains byte %#x: %w", name, c, ErrUnsafePath)
		}
	}
	return nil
}

// checkDir is checkPath for a directory argument, where "" and "." mean
// the root of the tree.
func checkDir(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	return checkPath(dir)
}

// splitPath splits a checked path into its components.
func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}
