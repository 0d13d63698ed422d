package record

import (
	"bytes"
	"fmt"
	"strings"
)

// UnionRecord merges two versions of one build record: the target's bytes
// stay as they are, and what the incoming record has that the target lacks
// is appended, in the incoming order: each run (a run line and the image
// lines after it) the target does not have, and for a run it has, the image
// lines it lacks, under a copy of that run line. The result holds what both
// sides recorded, and the target's version is a prefix of it, so a push
// only adds lines.
func UnionRecord(target, incoming []byte) ([]byte, bool, error) {
	if _, err := ParseBuildRecord(target); err != nil {
		return nil, false, err
	}
	if _, err := ParseBuildRecord(incoming); err != nil {
		return nil, false, err
	}
	have := map[string]map[string]bool{} // run line -> its image lines
	for _, b := range RecordBlocks(target) {
		if have[b[0]] == nil {
			have[b[0]] = map[string]bool{}
		}
		for _, line := range b[1:] {
			have[b[0]][line] = true
		}
	}
	out := bytes.Clone(target)
	changed := false
	for _, b := range RecordBlocks(incoming) {
		lines, known := have[b[0]]
		var missing []string
		for _, line := range b[1:] {
			if !lines[line] {
				missing = append(missing, line)
			}
		}
		if known && len(missing) == 0 {
			continue
		}
		if !known {
			lines = map[string]bool{}
			have[b[0]] = lines
		}
		out = append(out, b[0]...)
		for _, line := range missing {
			out = append(out, line...)
			lines[line] = true
		}
		changed = true
	}
	if !changed {
		return target, false, nil
	}
	if _, err := ParseBuildRecord(out); err != nil {
		return nil, false, fmt.Errorf("merging build records: %w", err)
	}
	return out, true, nil
}

// RecordBlocks splits a parsed build record into its runs: each block is a
// run line followed by the image lines after it, each with its newline.
func RecordBlocks(data []byte) [][]string {
	lines := strings.SplitAfter(string(data), "\n")
	var blocks [][]string
	for i, line := range lines {
		if i == 0 || line == "" {
			continue // the header, and the empty string after the last newline
		}
		if strings.HasPrefix(line, "run ") || len(blocks) == 0 {
			blocks = append(blocks, []string{line})
			continue
		}
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], line)
	}
	return blocks
}
