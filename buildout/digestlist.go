package buildout

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DigestEntry is one line of a digest list: an image manifest digest and the
// name of the package it belongs to.
type DigestEntry struct {
	// Digest is "sha256:" and 64 lower-case hex digits.
	Digest string
	// Name is the package's layout name, "<stage>-<name>".
	Name string
}

// maxDigestLine bounds one digest-list line: 64 hex digits, a space, a name.
const maxDigestLine = 64 + 1 + maxNameLength + 1

// ReadDigestList parses a digest list (formats.md section 1): lines of
// "<64 lower-case hex> <name>\n", nothing else. It is strict: no blank or
// comment lines, no carriage returns, no extra spaces, names that are
// repository name components; only a missing newline after the last line is
// tolerated. A name may appear on several lines (one per platform of a
// multi-platform image) but never twice with the same digest. Order is not
// checked: WriteDigestList sorts. Errors wrap ErrDigestList and name the line.
func ReadDigestList(r io.Reader) ([]DigestEntry, error) {
	br := bufio.NewReaderSize(r, maxDigestLine+1)
	var entries []DigestEntry
	seen := map[DigestEntry]bool{}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line %d: longer than %d bytes", ErrDigestList, lineNo, maxDigestLine)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading digest list: %w", err)
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return entries, nil
		}
		entry, perr := parseDigestLine(bytes.TrimSuffix(line, []byte("\n")))
		if perr != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrDigestList, lineNo, perr)
		}
		if seen[entry] {
			return nil, fmt.Errorf("%w: line %d: %s %s listed twice", ErrDigestList, lineNo, entry.Digest, entry.Name)
		}
		seen[entry] = true
		entries = append(entries, entry)
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
	}
}

func parseDigestLine(line []byte) (DigestEntry, error) {
	hexPart, name, ok := strings.Cut(string(line), " ")
	if !ok {
		return DigestEntry{}, fmt.Errorf("want %q", "<64-hex> <name>")
	}
	if !sha256HexRE.MatchString(hexPart) {
		return DigestEntry{}, fmt.Errorf("%q is not 64 lower-case hex digits", hexPart)
	}
	if err := checkName(name); err != nil {
		return DigestEntry{}, err
	}
	return DigestEntry{Digest: "sha256:" + hexPart, Name: name}, nil
}

// WriteDigestList writes entries as a digest list, sorted by name (and, for a
// name with several digests, by digest). It writes nothing if an entry has a
// malformed digest or name or is given twice.
func WriteDigestList(w io.Writer, entries []DigestEntry) error {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b DigestEntry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Digest, b.Digest))
	})
	var buf bytes.Buffer
	for i, e := range sorted {
		hexPart, ok := strings.CutPrefix(e.Digest, "sha256:")
		if !ok || !sha256HexRE.MatchString(hexPart) {
			return fmt.Errorf("writing digest list: %s: digest %q is not sha256:<64 lower-case hex>", e.Name, e.Digest)
		}
		if err := checkName(e.Name); err != nil {
			return fmt.Errorf("writing digest list: %w", err)
		}
		if i > 0 && sorted[i-1] == e {
			return fmt.Errorf("writing digest list: %s %s given twice", e.Digest, e.Name)
		}
		fmt.Fprintf(&buf, "%s %s\n", hexPart, e.Name)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing digest list: %w", err)
	}
	return nil
}

// DigestEntries lists one entry per image manifest of the images: what a
// digest list of this build output holds.
func DigestEntries(images []Image) []DigestEntry {
	var entries []DigestEntry
	for _, img := range images {
		for _, m := range img.Manifests {
			entries = append(entries, DigestEntry{Digest: m.Digest, Name: img.Name})
		}
	}
	return entries
}
