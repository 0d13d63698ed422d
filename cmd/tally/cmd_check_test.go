package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tally-sig/tally/hooks"
	"github.com/tally-sig/tally/sigstore"
)

// TestPrintRefusalsCapsEachKind: a refusal of 200,000 files prints the first
// ten of each kind and counts the rest, pointing to --json for the list.
func TestPrintRefusalsCapsEachKind(t *testing.T) {
	t.Parallel()
	res := &hooks.Result{}
	for i := range 25 {
		res.Refusals = append(res.Refusals, hooks.Refusal{Path: fmt.Sprintf("stagex/x@sha256=%064d/signature-1", i), Rule: hooks.RuleSignature, Kind: sigstore.KindGarbage, Reason: "garbage: no"})
	}
	for i := range 3 {
		res.Refusals = append(res.Refusals, hooks.Refusal{Path: fmt.Sprintf("f%d", i), Rule: hooks.RuleUnknownPath, Reason: "not part"})
	}
	for i := range 12 {
		res.Refusals = append(res.Refusals, hooks.Refusal{Path: fmt.Sprintf("stagex/y@sha256=%064d/signature-1", i), Rule: hooks.RuleAppendOnly, Reason: "deleted"})
	}
	var b bytes.Buffer
	printRefusals(&b, res, "see --json")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 10+3+10+2 {
		t.Errorf("%d lines, want 25:\n%s", len(lines), b.String())
	}
	for _, want := range []string{
		"tally: refused: ... and 15 more signature (garbage) refusal(s); see --json",
		"tally: refused: ... and 2 more append-only refusal(s); see --json",
		"tally: refused: f2: not part",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("no line %q in:\n%s", want, b.String())
		}
	}
}
