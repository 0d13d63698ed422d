package gitstore

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/google/go-cmp/cmp"
)

func TestHistory(t *testing.T) {
	t.Parallel()
	r := memRepo(false)
	commit := func(branch string, parents []plumbing.Hash, msg string) plumbing.Hash {
		t.Helper()
		c, err := r.Commit(CommitRequest{Branch: plumbing.ReferenceName(branch), Parents: parents,
			Changes: []Change{write(msg, msg)}, Message: msg, Author: testAuthor()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// a - b - c - m    (main)
	//      \     /
	//       d - e      (side)
	//        \
	//         f        (other)
	// u                (unrelated)
	a := commit("main", nil, "a")
	b := commit("main", []plumbing.Hash{a}, "b")
	c := commit("main", []plumbing.Hash{b}, "c")
	// A branch's first parent is its expected tip: start side and other
	// where they fork.
	setBranch(t, r, "side", b)
	d := commit("side", []plumbing.Hash{b}, "d")
	e := commit("side", []plumbing.Hash{d}, "e")
	setBranch(t, r, "other", d)
	f := commit("other", []plumbing.Hash{d}, "f")
	m := commit("main", []plumbing.Hash{c, e}, "m")
	u := commit("unrelated", nil, "u")

	ancestors := []struct {
		a, b plumbing.Hash
		want bool
	}{
		{a, m, true}, {e, m, true}, {d, m, true}, {m, m, true}, {plumbing.ZeroHash, a, true},
		{f, m, false}, {m, a, false}, {u, m, false}, {c, e, false}, {a, plumbing.ZeroHash, false},
	}
	for _, tt := range ancestors {
		got, err := r.IsAncestor(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("IsAncestor(%.7s, %.7s) = %v, %v; want %v", tt.a, tt.b, got, err, tt.want)
		}
	}

	bases := []struct {
		a, b, want plumbing.Hash
	}{
		{c, e, b}, {m, f, d}, {f, m, d}, {c, m, c}, {a, a, a}, {u, m, plumbing.ZeroHash}, {plumbing.ZeroHash, m, plumbing.ZeroHash},
	}
	for _, tt := range bases {
		got, err := r.MergeBase(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("MergeBase(%.7s, %.7s) = %.7s, %v; want %.7s", tt.a, tt.b, got, err, tt.want)
		}
	}

	between := []struct {
		name     string
		old, new plumbing.Hash
		want     []plumbing.Hash
	}{
		{"fast-forward", b, m, []plumbing.Hash{c, d, e, m}},
		{"from nothing", plumbing.ZeroHash, c, []plumbing.Hash{a, b, c}},
		{"nothing new", m, c, nil},
		{"side branch", c, f, []plumbing.Hash{d, f}},
	}
	for _, tt := range between {
		t.Run(tt.name, func(t *testing.T) {
			commits, err := r.CommitsBetween(tt.old, tt.new)
			if err != nil {
				t.Fatal(err)
			}
			var got []plumbing.Hash
			for _, c := range commits {
				got = append(got, c.Hash)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CommitsBetween (-want +got):\n%s", diff)
			}
		})
	}
}

// setBranch points a new branch at a commit.
func setBranch(t *testing.T, r *Repo, name string, h plumbing.Hash) {
	t.Helper()
	if err := r.updateRef(refUpdate{name: plumbing.NewBranchReferenceName(name), new: h}); err != nil {
		t.Fatal(err)
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	r := memRepo(false)
	c1 := mustCommit(t, r, plumbing.ZeroHash, "one",
		write("same/1", "s"), write("mod/a", "1"), write("mod/b", "1"), write("gone/x/y", "1"),
		write("flip", "file"), write("flap/in", "dir"))
	// One commit cannot make a path both a file and a directory: two do.
	c2 := mustCommit(t, r, c1, "two",
		write("mod/a", "2"), write("new/z", "n"), del("gone/x/y"), del("flip"), del("flap/in"))
	c2 = mustCommit(t, r, c2, "three", write("flip/in", "now a dir"), write("flap", "now a file"))
	t1, t2 := treeOf(t, r, c1), treeOf(t, r, c2)
	got, err := r.Diff(t1, t2)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, d := range got {
		paths = append(paths, d.Action.String()+" "+d.Path)
		if d.Action != Deleted && d.NewMode != filemode.Regular {
			t.Errorf("%s: new mode %o", d.Path, d.NewMode)
		}
	}
	want := []string{
		"added flap", "deleted flap/in", "deleted flip", "added flip/in",
		"deleted gone/x/y", "modified mod/a", "added new/z",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	back, err := r.Diff(t2, t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(got) {
		t.Errorf("reverse diff has %d entries, want %d", len(back), len(got))
	}
	if none, err := r.Diff(t1, t1); err != nil || len(none) != 0 {
		t.Errorf("Diff(t, t) = %v, %v", none, err)
	}
	all, err := r.Diff(plumbing.ZeroHash, t1)
	if err != nil || len(all) != 6 {
		t.Errorf("Diff(empty, t1) has %d entries (%v), want 6", len(all), err)
	}
}

func treeOf(t testing.TB, r *Repo, commit plumbing.Hash) plumbing.Hash {
	t.Helper()
	c, err := r.ReadCommit(commit)
	if err != nil {
		t.Fatal(err)
	}
	return c.Tree
}
