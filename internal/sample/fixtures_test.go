package sample_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/sample"
)

var update = flag.Bool("update", false, "rewrite testdata/layouts from internal/sample")

// fixturesDir holds the committed layouts the end-to-end tests use.
const fixturesDir = "../../testdata/layouts"

// fixtureSets are the directories of testdata/layouts and the layouts in
// each; a digest list of each set's digests is kept beside it as
// <set>-digests.txt.
var fixtureSets = []struct {
	dir   string
	specs []sample.Spec
}{
	{"out", []sample.Spec{
		{Name: "core-nested", Tag: "1.0.0"},
		{Name: "core-multi", Tag: "2.1.0", Platforms: []string{"linux/amd64", "linux/arm64"}},
		{Name: "core-flat", Tag: "0.9.1", Flat: true},
	}},
	{"diverged", []sample.Spec{
		{Name: "core-nested", Tag: "1.0.0", Seed: "diverged"},
	}},
	{"broken", []sample.Spec{
		{Name: "core-notag"},
	}},
}

// writeFixtures writes every fixture set under root.
func writeFixtures(t *testing.T, root string) {
	t.Helper()
	for _, set := range fixtureSets {
		digests, err := sample.Write(filepath.Join(root, set.dir), set.specs...)
		if err != nil {
			t.Fatal(err)
		}
		var entries []buildout.DigestEntry
		for name, list := range digests {
			for _, d := range list {
				entries = append(entries, buildout.DigestEntry{Digest: d, Name: name})
			}
		}
		var list bytes.Buffer
		if err := buildout.WriteDigestList(&list, entries); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, set.dir+"-digests.txt"), list.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sample.WriteDockerSave(filepath.Join(root, "broken", "core-saved")); err != nil {
		t.Fatal(err)
	}
}

// TestFixturesAreCurrent proves that the committed testdata/layouts are
// exactly what internal/sample writes today. After a deliberate change, run
// go test ./internal/sample -run TestFixturesAreCurrent -update
func TestFixturesAreCurrent(t *testing.T) {
	t.Parallel()
	if *update {
		for _, set := range fixtureSets {
			for _, p := range []string{set.dir, set.dir + "-digests.txt"} {
				if err := os.RemoveAll(filepath.Join(fixturesDir, p)); err != nil {
					t.Fatal(err)
				}
			}
		}
		writeFixtures(t, fixturesDir)
	}
	fresh := t.TempDir()
	writeFixtures(t, fresh)
	committed := readTree(t, fixturesDir)
	delete(committed, "README.md")
	if diff := cmp.Diff(readTree(t, fresh), committed); diff != "" {
		t.Errorf("testdata/layouts differ from what internal/sample writes (-fresh +committed); "+
			"if the change is deliberate, rerun with -update:\n%s", diff)
	}
}
