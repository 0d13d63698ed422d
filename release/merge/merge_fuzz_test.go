package merge_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/release/record"
)

// FuzzUnionRecord merges two build records, which come from other
// maintainers' branches: it never panics, refuses what does not parse, and
// otherwise returns a record that parses, starts with the target's bytes,
// holds every run and image line of both sides (under the same run), and
// does not change when merged again.
func FuzzUnionRecord(f *testing.F) {
	h := record.RecordHeader + "\n"
	r1 := "run time=2026-11-28T10:00:00Z source=a dirty=no platform=p cpu-vendor=v cpu-model=m tally=t\n"
	r2 := "run time=2026-11-28T11:00:00Z source=a dirty=no platform=p cpu-vendor=v cpu-model=\"AMD EPYC\" tally=t\n"
	i1 := strings.Repeat("a", 64) + " core-a 1.0 linux/amd64\n"
	i2 := strings.Repeat("b", 64) + " core-b 1.0 linux/arm64\n"
	f.Add([]byte(h+r1+i1), []byte(h+r1+i1+r2+i2))
	f.Add([]byte(h+r1+i1), []byte(h+r2+i2))
	f.Add([]byte(h+r1+i1+i2), []byte(h+r1+i1))
	f.Add([]byte(h+r1), []byte(h+r1+i1))
	f.Add([]byte(h), []byte("garbage\n"))
	f.Fuzz(func(t *testing.T, target, incoming []byte) {
		out, changed, err := record.UnionRecord(target, incoming)
		_, terr := record.ParseBuildRecord(target)
		_, ierr := record.ParseBuildRecord(incoming)
		if terr != nil || ierr != nil {
			if err == nil {
				t.Fatalf("merged records that do not parse (%v, %v)", terr, ierr)
			}
			return
		}
		if err != nil {
			t.Fatalf("two good records: %v", err)
		}
		if _, err := record.ParseBuildRecord(out); err != nil {
			t.Fatalf("the union does not parse: %v", err)
		}
		if !bytes.HasPrefix(out, target) {
			t.Fatal("the target is not a prefix of the union")
		}
		if changed != !bytes.Equal(out, target) {
			t.Fatalf("changed = %v, but the bytes say otherwise", changed)
		}
		have := recordPairs(out)
		for p := range recordPairs(target) {
			if !have[p] {
				t.Fatalf("the union lost the target's %q", p)
			}
		}
		for p := range recordPairs(incoming) {
			if !have[p] {
				t.Fatalf("the union lost the incoming %q", p)
			}
		}
		again, changedAgain, err := record.UnionRecord(out, incoming)
		if err != nil || changedAgain || !bytes.Equal(again, out) {
			t.Fatalf("merging again changed the union: %v, %v", changedAgain, err)
		}
	})
}

// FuzzSignatureNumber checks that signature-N is read the way readers count:
// exactly the names "signature-" + N for N from 1, without leading zeros.
func FuzzSignatureNumber(f *testing.F) {
	for _, s := range []string{"signature-1", "signature-10", "signature-01", "signature-0", "signature--1", "signature-", "signature-2147483647", "signature-99999999999", "sig"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, ok := merge.SignatureNumber(name)
		if !ok {
			return
		}
		if n < 1 || "signature-"+itoa(n) != name {
			t.Fatalf("%q read as %d", name, n)
		}
	})
}

// recordPairs is what a build record says: every run line, and every image
// line with the run line it belongs to.
func recordPairs(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, b := range record.RecordBlocks(data) {
		out[b[0]] = true
		for _, line := range b[1:] {
			out[b[0]+line] = true
		}
	}
	return out
}

func itoa(n int) string {
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
