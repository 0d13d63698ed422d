package quorum

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// walker.files returns the files in path order, whether the walk gave them
// in order (git's tree order, the fast case) or not (a tree git would call
// broken), and over several parallel parts.
func TestWalkerFilesInPathOrder(t *testing.T) {
	mkUnits := func(n int) []*unitWork {
		var units []*unitWork
		for i := range n {
			dir := fmt.Sprintf("stagex/core-%05d@sha256=%064x", i, i)
			u := &unitWork{path: dir, memo: &unitMemo{}}
			for _, num := range []int{1, 10, 2} { // byte order: 1, 10, 2
				u.memo.files = append(u.memo.files, memoFile{path: fmt.Sprintf("%s/signature-%d", dir, num),
					loc: sigstore.Location{Repository: fmt.Sprintf("stagex/core-%05d", i), Number: num}})
			}
			units = append(units, u)
		}
		// A stray file after its neighbour directory, as git orders them.
		units = append(units, &unitWork{path: "stagex/zz", memo: &unitMemo{files: []memoFile{{path: "stagex/zz", kind: sigstore.KindMalformedPath}}}})
		return units
	}
	for _, n := range []int{3, 5000} {
		for _, shuffled := range []bool{false, true} {
			units := mkUnits(n)
			if shuffled {
				slices.Reverse(units)
				units[1].memo.files[0], units[1].memo.files[1] = units[1].memo.files[1], units[1].memo.files[0]
			}
			w := &walker{st: &policy.State{Policy: policy.Policy{Namespace: "stagex"}}, items: units}
			files := w.files()
			if len(files) != 3*n+1 {
				t.Fatalf("n=%d shuffled=%v: %d files, want %d", n, shuffled, len(files), 3*n+1)
			}
			if !slices.IsSortedFunc(files, func(a, b JudgedFile) int { return strings.Compare(a.Path, b.Path) }) {
				t.Errorf("n=%d shuffled=%v: files not in path order", n, shuffled)
			}
			if f := files[0]; f.Name != "core-00000" || !strings.HasSuffix(f.Path, "/signature-1") {
				t.Errorf("n=%d shuffled=%v: first file %s named %q", n, shuffled, f.Path, f.Name)
			}
			if f := files[len(files)-1]; f.Path != "stagex/zz" || f.Name != "" {
				t.Errorf("n=%d shuffled=%v: last file %s named %q", n, shuffled, f.Path, f.Name)
			}
		}
	}
}
