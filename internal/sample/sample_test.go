package sample_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/tally-sig/tally/internal/sample"
)

// readTree returns every file under dir by slash path, with its mode.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = info.Mode().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var allShapes = []sample.Spec{
	{Name: "core-nested", Tag: "1.0.0", Seed: "s"},
	{Name: "core-multi", Tag: "2.0.0", Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Seed: "s"},
	{Name: "core-flat", Tag: "3.0.0", Flat: true},
	{Name: "core-flatmulti", Tag: "4.0.0", Platforms: []string{"linux/arm64", "linux/amd64"}, Flat: true},
}

func TestWriteIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	digestsA, err := sample.Write(a, allShapes...)
	if err != nil {
		t.Fatal(err)
	}
	digestsB, err := sample.Write(b, allShapes...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(digestsA, digestsB); diff != "" {
		t.Errorf("digests differ between two writes (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(readTree(t, a), readTree(t, b)); diff != "" {
		t.Errorf("files differ between two writes (-first +second):\n%s", diff)
	}
	for name, digests := range digestsA {
		if want := len(specByName(name).Platforms); want != 0 && len(digests) != want {
			t.Errorf("%s: %d digests, want %d", name, len(digests), want)
		}
	}
}

func specByName(name string) sample.Spec {
	for _, s := range allShapes {
		if s.Name == name {
			return s
		}
	}
	return sample.Spec{}
}

func TestWriteDiverges(t *testing.T) {
	t.Parallel()
	base := sample.Spec{Name: "core-gcc", Tag: "14.2.0", Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: "alice"}
	variants := map[string]sample.Spec{"base": base}
	seed := base
	seed.Seed = "mallory"
	variants["other seed"] = seed
	tag := base
	tag.Tag = "14.2.1"
	variants["other tag"] = tag
	flat := base
	flat.Flat = true
	variants["flat"] = flat

	seen := map[string]string{}
	for what, spec := range variants {
		digests, err := sample.Write(t.TempDir(), spec)
		if err != nil {
			t.Fatal(err)
		}
		got := digests[spec.Name]
		if got[0] == got[1] {
			t.Errorf("%s: amd64 and arm64 share digest %s", what, got[0])
		}
		key := strings.Join(got, " ")
		if what == "flat" {
			// The shape of the index does not change the images.
			if key != seen["base"] && seen["base"] != "" {
				t.Errorf("flat layout has digests %s, nested %s: want the same images", key, seen["base"])
			}
			continue
		}
		for other, digests := range seen {
			if other != "flat" && digests == key {
				t.Errorf("%s and %s have the same digests %s", what, other, key)
			}
		}
		seen[what] = key
	}
}

// TestWriteValidImages has go-containerregistry read every written layout
// back and validate each image (digests, sizes, diff IDs, config), and checks
// the platform in each config and index entry.
func TestWriteValidImages(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	digests, err := sample.Write(out, allShapes...)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range allShapes {
		t.Run(spec.Name, func(t *testing.T) {
			path, err := layout.FromPath(filepath.Join(out, spec.Name))
			if err != nil {
				t.Fatal(err)
			}
			top, err := path.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(top); err != nil {
				t.Fatalf("validating index.json: %v", err)
			}
			manifest, err := top.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			platformIndex := top
			if spec.Flat {
				if len(manifest.Manifests) != len(digests[spec.Name]) {
					t.Fatalf("flat index.json has %d entries, want %d", len(manifest.Manifests), len(digests[spec.Name]))
				}
			} else {
				if len(manifest.Manifests) != 1 {
					t.Fatalf("nested index.json has %d entries, want 1", len(manifest.Manifests))
				}
				platformIndex, err = top.ImageIndex(manifest.Manifests[0].Digest)
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range manifest.Manifests {
				if got := d.Annotations["org.opencontainers.image.ref.name"]; got != spec.Tag {
					t.Errorf("index.json entry has tag %q, want %q", got, spec.Tag)
				}
			}
			inner, err := platformIndex.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var gotDigests []string
			for _, d := range inner.Manifests {
				img, err := platformIndex.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				configPlatform := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
				if d.Platform == nil || !d.Platform.Equals(configPlatform) {
					t.Errorf("manifest %s: index platform %v, config platform %v", d.Digest, d.Platform, configPlatform)
				}
				if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
					if spec.Flat || configPlatform.OS != "unknown" || d.Annotations["vnd.docker.reference.digest"] == "" {
						t.Errorf("attestation %s: platform %v, annotations %v", d.Digest, configPlatform, d.Annotations)
					}
					continue
				}
				gotDigests = append(gotDigests, d.Digest.String())
				if err := validate.Image(img); err != nil {
					t.Errorf("validating %s: %v", d.Digest, err)
				}
			}
			if diff := cmp.Diff(digests[spec.Name], gotDigests); diff != "" {
				t.Errorf("platform digests mismatch (-Write +layout):\n%s", diff)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		specs   []sample.Spec
		wantErr string
	}{
		{"path as name", []sample.Spec{{Name: "../x", Tag: "1"}}, "not a plain directory name"},
		{"empty name", []sample.Spec{{Tag: "1"}}, "not a plain directory name"},
		{"name twice", []sample.Spec{{Name: "a", Tag: "1"}, {Name: "a", Tag: "2"}}, "name given twice"},
		{"bad platform", []sample.Spec{{Name: "a", Tag: "1", Platforms: []string{"linux"}}}, "want os/arch[/variant]"},
		{"platform twice", []sample.Spec{{Name: "a", Tag: "1", Platforms: []string{"linux/amd64", "linux/amd64"}}}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sample.Write(t.TempDir(), tt.specs...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Write error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("existing directory", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		if _, err := sample.Write(out, sample.Spec{Name: "a", Tag: "1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := sample.Write(out, sample.Spec{Name: "a", Tag: "1"}); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second Write error = %v, want already exists", err)
		}
	})
}

func TestWriteDockerSave(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "core-foo")
	if err := sample.WriteDockerSave(dir); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("docker save directory has %s", absent)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 || !cmp.Equal(manifest[0].RepoTags, []string{"stagex/core-foo:1.0.0"}) {
		t.Fatalf("manifest.json = %s", raw)
	}
	for _, f := range append([]string{manifest[0].Config}, manifest[0].Layers...) {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("manifest.json names %s: %v", f, err)
		}
	}
}

func TestMany(t *testing.T) {
	t.Parallel()
	specs := sample.Many(3, "x")
	want := []sample.Spec{
		{Name: "bench-0000", Tag: "1.0.0", Seed: "x"},
		{Name: "bench-0001", Tag: "1.0.0", Seed: "x"},
		{Name: "bench-0002", Tag: "1.0.0", Seed: "x"},
	}
	if diff := cmp.Diff(want, specs); diff != "" {
		t.Errorf("Many mismatch (-want +got):\n%s", diff)
	}
}

// BenchmarkWriteMany measures writing a 500-package out/ directory, the size
// the buildout and release benchmarks use.
func BenchmarkWriteMany(b *testing.B) {
	specs := sample.Many(500, "bench")
	for b.Loop() {
		if _, err := sample.Write(b.TempDir(), specs...); err != nil {
			b.Fatal(err)
		}
	}
}
