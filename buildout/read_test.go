package buildout_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/sample"
)

// outDir is a build output directory with good layouts, broken ones, and
// entries that are not layouts at all.
func outDir(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	_, err := sample.Write(out,
		sample.Spec{Name: "core-gcc", Tag: "14.2.0"},
		sample.Spec{Name: "core-busybox", Tag: "1.36.1", Platforms: []string{"linux/amd64", "linux/arm64"}},
		sample.Spec{Name: "user-jq", Tag: "1.7", Flat: true},
		sample.Spec{Name: "user-notag"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := sample.WriteDockerSave(filepath.Join(out, "user-saved")); err != nil {
		t.Fatal(err)
	}
	// Not layouts: a log file, an empty directory, a scratch directory.
	for _, dir := range []string{"logs", ".tmp-core-gcc"} {
		if err := os.Mkdir(filepath.Join(out, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "build.log"), []byte("log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sample.Write(filepath.Join(out, ".tmp-core-gcc"), sample.Spec{Name: "Bad_Name", Tag: "1"}); err != nil {
		t.Fatal(err)
	}
	return out
}

func imageNames(images []buildout.Image) []string {
	var names []string
	for _, img := range images {
		names = append(names, img.Name)
	}
	return names
}

// layoutErrors unpacks the errors Read joined.
func layoutErrors(t *testing.T, err error) map[string]error {
	t.Helper()
	got := map[string]error{}
	if err == nil {
		return got
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Read error %v does not join errors", err)
	}
	for _, e := range joined.Unwrap() {
		var le *buildout.LayoutError
		if !errors.As(e, &le) {
			t.Fatalf("Read error %v is not a *LayoutError", e)
		}
		got[filepath.Base(le.Dir)] = le.Err
	}
	return got
}

func TestRead(t *testing.T) {
	t.Parallel()
	out := outDir(t)
	tests := []struct {
		name      string
		names     []string
		wantNames []string
		wantErrs  map[string]error // layout name → sentinel
	}{
		{
			name:      "everything",
			wantNames: []string{"core-busybox", "core-gcc", "user-jq"},
			wantErrs:  map[string]error{"user-notag": buildout.ErrNoTag, "user-saved": buildout.ErrNotLayout},
		},
		{
			name:      "named, sorted and deduplicated",
			names:     []string{"user-jq", "core-gcc", "user-jq"},
			wantNames: []string{"core-gcc", "user-jq"},
		},
		{
			name:     "named but missing",
			names:    []string{"core-gcc", "core-missing", "logs"},
			wantErrs: map[string]error{"core-missing": buildout.ErrNotLayout, "logs": buildout.ErrNotLayout},
			// core-gcc is still read.
			wantNames: []string{"core-gcc"},
		},
		{
			name:     "named with a path",
			names:    []string{"../core-gcc"},
			wantErrs: map[string]error{"core-gcc": buildout.ErrBadName},
		},
		{
			name:     "named file",
			names:    []string{"build.log"},
			wantErrs: map[string]error{"build.log": buildout.ErrNotLayout},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			images, err := buildout.Read(out, tt.names)
			if diff := cmp.Diff(tt.wantNames, imageNames(images)); diff != "" {
				t.Errorf("Read images mismatch (-want +got):\n%s", diff)
			}
			gotErrs := layoutErrors(t, err)
			if len(gotErrs) != len(tt.wantErrs) {
				t.Errorf("Read error = %v, want errors for %v", err, tt.wantErrs)
			}
			for name, want := range tt.wantErrs {
				if !errors.Is(gotErrs[name], want) {
					t.Errorf("Read error for %s = %v, want %v", name, gotErrs[name], want)
				}
			}
			for _, img := range images {
				if want := filepath.Join(out, img.Name); img.Dir != want {
					t.Errorf("image %s has Dir %q, want %q", img.Name, img.Dir, want)
				}
			}
		})
	}
}

// TestReadMatchesReadFS checks that Read gives what ReadFS gives on the same
// directory, apart from Dir.
func TestReadMatchesReadFS(t *testing.T) {
	t.Parallel()
	out := outDir(t)
	images, err := buildout.Read(out, []string{"core-busybox"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := buildout.ReadFS(os.DirFS(filepath.Join(out, "core-busybox")), "core-busybox")
	if err != nil {
		t.Fatal(err)
	}
	want.Dir = filepath.Join(out, "core-busybox")
	if diff := cmp.Diff([]buildout.Image{want}, images); diff != "" {
		t.Errorf("Read mismatch (-ReadFS +Read):\n%s", diff)
	}
	if len(images[0].Manifests) != 2 {
		t.Errorf("core-busybox has %d manifests, want 2", len(images[0].Manifests))
	}
}

func TestReadMissingOutDir(t *testing.T) {
	t.Parallel()
	images, err := buildout.Read(filepath.Join(t.TempDir(), "out"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read error = %v, want fs.ErrNotExist", err)
	}
	if images != nil {
		t.Errorf("Read images = %v, want none", images)
	}
}

func TestReadEmptyOutDir(t *testing.T) {
	t.Parallel()
	images, err := buildout.Read(t.TempDir(), nil)
	if err != nil || len(images) != 0 {
		t.Errorf("Read = %v, %v; want no images and no error", images, err)
	}
}

// TestReadDockerSaveHint checks the message a maintainer sees for the most
// likely mistake: a docker save directory in out/.
func TestReadDockerSaveHint(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if err := sample.WriteDockerSave(filepath.Join(out, "core-foo")); err != nil {
		t.Fatal(err)
	}
	_, err := buildout.Read(out, nil)
	want := filepath.Join(out, "core-foo") + ": not an OCI image layout: no oci-layout file, but a manifest.json as `docker save` writes"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Read error = %v, want it to contain %q", err, want)
	}
}

// TestReadFixtures reads the committed sample build outputs and checks the
// digests against the digest lists internal/sample wrote beside them.
func TestReadFixtures(t *testing.T) {
	t.Parallel()
	for _, set := range []string{"out", "diverged"} {
		images, err := buildout.Read(filepath.Join("..", "testdata", "layouts", set), nil)
		if err != nil {
			t.Fatalf("%s: %v", set, err)
		}
		var got bytes.Buffer
		if err := buildout.WriteDigestList(&got, buildout.DigestEntries(images)); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "testdata", "layouts", set+"-digests.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), got.String()); diff != "" {
			t.Errorf("%s: digests mismatch (-%s-digests.txt +Read):\n%s", set, set, diff)
		}
	}
	images, err := buildout.Read(filepath.Join("..", "testdata", "layouts", "broken"), nil)
	errs := layoutErrors(t, err)
	if len(images) != 0 || len(errs) != 2 || !errors.Is(errs["core-notag"], buildout.ErrNoTag) || !errors.Is(errs["core-saved"], buildout.ErrNotLayout) {
		t.Errorf("broken: Read = %v, %v; want ErrNoTag for core-notag and ErrNotLayout for core-saved", images, err)
	}
}

// TestReadStaysInsideTheLayout checks that a symbolic link cannot make Read
// use a file outside the layout directory, even one with the right content.
func TestReadStaysInsideTheLayout(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	digests, err := sample.Write(out, sample.Spec{Name: "core-foo", Tag: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(out, "core-foo", "blobs", "sha256", strings.TrimPrefix(digests["core-foo"][0], "sha256:"))
	outside := filepath.Join(t.TempDir(), "manifest")
	if err := os.Rename(blob, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, blob); err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err == nil || len(images) != 0 {
		t.Fatalf("Read = %v, %v; want an error for the link leaving the layout", images, err)
	}
	if !strings.Contains(err.Error(), digests["core-foo"][0]) {
		t.Errorf("Read error %q does not name the blob", err)
	}
}
