package buildout_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/sample"
)

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// TestReadFSSampleShapes reads the layouts internal/sample writes in each
// shape and checks every field against values computed without buildout.
func TestReadFSSampleShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec sample.Spec
		// platforms expected, in order; nil means the spec's own.
		platforms []string
	}{
		{"nested single platform", sample.Spec{Name: "core-gcc", Tag: "14.2.0"}, []string{"linux/amd64"}},
		{"nested multi-platform", sample.Spec{Name: "core-busybox", Tag: "1.36.1", Platforms: []string{"linux/amd64", "linux/arm64"}}, nil},
		{"nested with variants", sample.Spec{Name: "core-musl", Tag: "1.2.5", Platforms: []string{"linux/arm64/v8", "linux/arm/v7"}}, nil},
		{"flat single platform", sample.Spec{Name: "user-jq", Tag: "1.7", Flat: true}, []string{"linux/amd64"}},
		{"flat multi-platform", sample.Spec{Name: "user-zlib", Tag: "1.3.1", Platforms: []string{"linux/amd64", "linux/arm64"}, Flat: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			digests, err := sample.Write(out, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			platforms := tt.platforms
			if platforms == nil {
				platforms = tt.spec.Platforms
			}
			fsys := os.DirFS(filepath.Join(out, tt.spec.Name))
			want := buildout.Image{Name: tt.spec.Name, Dir: tt.spec.Name, Tag: tt.spec.Tag}
			for i, d := range digests[tt.spec.Name] {
				want.Manifests = append(want.Manifests, buildout.Manifest{
					Digest: d, Platform: platforms[i], MediaType: ociManifest, Size: blobSum(t, fsys, d),
				})
			}
			got, err := buildout.ReadFS(fsys, tt.spec.Name)
			if err != nil {
				t.Fatalf("ReadFS: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ReadFS mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadFSHandmadeShapes covers valid layouts no exporter of ours writes.
func TestReadFSHandmadeShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(l *fakeLayout) []buildout.Manifest
	}{
		{
			name: "docker schema 2 manifest, platform only in the config",
			build: func(l *fakeLayout) []buildout.Manifest {
				layer := l.blob(types.DockerLayer, []byte("layer"))
				cfg := l.blobJSON(types.DockerConfigJSON, v1.ConfigFile{OS: "linux", Architecture: "s390x"})
				m := l.blobJSON(types.DockerManifestSchema2, v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2, Config: cfg, Layers: []v1.Descriptor{layer}})
				l.indexJSON(tagged(m, "1.0"))
				return []buildout.Manifest{{Digest: m.Digest.String(), Platform: "linux/s390x", MediaType: string(types.DockerManifestSchema2), Size: m.Size}}
			},
		},
		{
			name: "no platform anywhere",
			build: func(l *fakeLayout) []buildout.Manifest {
				cfg := l.blobJSON(types.OCIConfigJSON, v1.ConfigFile{})
				m := l.blobJSON(types.OCIManifestSchema1, v1.Manifest{SchemaVersion: 2, Config: cfg})
				m.MediaType = types.OCIManifestSchema1
				l.indexJSON(tagged(m, "1.0"))
				return []buildout.Manifest{{Digest: m.Digest.String(), MediaType: ociManifest, Size: m.Size}}
			},
		},
		{
			name: "variant only in the config",
			build: func(l *fakeLayout) []buildout.Manifest {
				m := l.image("linux/arm64/v8")
				l.indexJSON(tagged(onPlatform(m, "linux/arm64"), "1.0"))
				return []buildout.Manifest{{Digest: m.Digest.String(), Platform: "linux/arm64/v8", MediaType: ociManifest, Size: m.Size}}
			},
		},
		{
			name: "one manifest listed twice",
			build: func(l *fakeLayout) []buildout.Manifest {
				m := l.image("linux/amd64")
				l.indexJSON(tagged(m, "1.0"), tagged(m, "1.0"))
				return []buildout.Manifest{{Digest: m.Digest.String(), Platform: "linux/amd64", MediaType: ociManifest, Size: m.Size}}
			},
		},
		{
			name: "one nested index listed twice",
			build: func(l *fakeLayout) []buildout.Manifest {
				m := l.image("linux/amd64")
				idx := l.index(onPlatform(m, "linux/amd64"))
				l.indexJSON(tagged(idx, "1.0"), tagged(idx, "1.0"))
				return []buildout.Manifest{{Digest: m.Digest.String(), Platform: "linux/amd64", MediaType: ociManifest, Size: m.Size}}
			},
		},
		{
			name: "docker manifest list, three levels deep, attestation skipped",
			build: func(l *fakeLayout) []buildout.Manifest {
				amd := l.image("linux/amd64")
				arm := l.image("linux/arm64")
				att := l.image("unknown/unknown")
				inner := l.blobJSON(types.DockerManifestList, v1.IndexManifest{SchemaVersion: 2, MediaType: types.DockerManifestList, Manifests: []v1.Descriptor{
					onPlatform(arm, "linux/arm64"), attestation(att, arm.Digest),
				}})
				outer := l.index(onPlatform(amd, "linux/amd64"), inner)
				l.indexJSON(tagged(outer, "2.0"))
				return []buildout.Manifest{
					{Digest: amd.Digest.String(), Platform: "linux/amd64", MediaType: ociManifest, Size: amd.Size},
					{Digest: arm.Digest.String(), Platform: "linux/arm64", MediaType: ociManifest, Size: arm.Size},
				}
			},
		},
		{
			name: "foreign layer need not be in the layout",
			build: func(l *fakeLayout) []buildout.Manifest {
				cfg := l.blobJSON(types.DockerConfigJSON, v1.ConfigFile{OS: "windows", Architecture: "amd64"})
				foreign := v1.Descriptor{MediaType: types.DockerForeignLayer, Size: 10, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
				m := l.blobJSON(types.DockerManifestSchema2, v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2, Config: cfg, Layers: []v1.Descriptor{foreign}})
				l.indexJSON(tagged(m, "ltsc"))
				return []buildout.Manifest{{Digest: m.Digest.String(), Platform: "windows/amd64", MediaType: string(types.DockerManifestSchema2), Size: m.Size}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newFakeLayout(t)
			want := tt.build(l)
			got, err := buildout.ReadFS(l.fs, "core-x")
			if err != nil {
				t.Fatalf("ReadFS: %v", err)
			}
			if diff := cmp.Diff(want, got.Manifests); diff != "" {
				t.Errorf("manifests mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// sampleFS writes a sample layout and returns it as a MapFS to damage, with
// its platform digests.
func sampleFS(t *testing.T, spec sample.Spec) (fstest.MapFS, []string) {
	t.Helper()
	out := t.TempDir()
	digests, err := sample.Write(out, spec)
	if err != nil {
		t.Fatal(err)
	}
	return loadDir(t, filepath.Join(out, spec.Name)), digests[spec.Name]
}

func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// editJSON decodes a file of fsys, lets edit change it, and writes it back
// (without fixing any digest that referred to it).
func editJSON(t *testing.T, fsys fstest.MapFS, name string, edit func(map[string]any)) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(fsys[name].Data, &v); err != nil {
		t.Fatal(err)
	}
	edit(v)
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	fsys[name] = &fstest.MapFile{Data: raw}
}

func TestReadFSErrors(t *testing.T) {
	t.Parallel()
	nested := sample.Spec{Name: "core-foo", Tag: "1.0"}
	tests := []struct {
		name    string
		layout  func(t *testing.T) fs.FS
		imgName string // default core-foo
		want    error
		wantMsg string
	}{
		{
			name:    "empty directory",
			layout:  func(t *testing.T) fs.FS { return fstest.MapFS{} },
			want:    buildout.ErrNotLayout,
			wantMsg: "no oci-layout file",
		},
		{
			name: "docker save directory",
			layout: func(t *testing.T) fs.FS {
				dir := filepath.Join(t.TempDir(), "core-foo")
				if err := sample.WriteDockerSave(dir); err != nil {
					t.Fatal(err)
				}
				return os.DirFS(dir)
			},
			want:    buildout.ErrNotLayout,
			wantMsg: "docker save",
		},
		{
			name: "no index.json",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				delete(fsys, "index.json")
				return fsys
			},
			want:    buildout.ErrNotLayout,
			wantMsg: "no index.json",
		},
		{
			name: "oci-layout is not JSON",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["oci-layout"] = &fstest.MapFile{Data: []byte("1.0.0")}
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "oci-layout",
		},
		{
			name: "unknown layout version",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["oci-layout"] = &fstest.MapFile{Data: []byte(`{"imageLayoutVersion":"2.0.0"}`)}
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: `unsupported imageLayoutVersion "2.0.0"`,
		},
		{
			name: "index.json truncated",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["index.json"].Data = fsys["index.json"].Data[:40]
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "index.json: not valid JSON",
		},
		{
			name: "index.json with trailing data",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["index.json"].Data = append(fsys["index.json"].Data, "{}"...)
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "index.json: not valid JSON",
		},
		{
			name: "index.json is an array",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["index.json"].Data = []byte(`[]`)
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "not a JSON object",
		},
		{
			name: "index.json is a directory",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				delete(fsys, "index.json")
				fsys["index.json/x"] = &fstest.MapFile{}
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "index.json is not a regular file",
		},
		{
			name: "index.json too large",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				fsys["index.json"].Data = append(fsys["index.json"].Data, make([]byte, buildout.MaxManifestSize)...)
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "index.json is too large",
		},
		{
			name: "index.json lists nothing",
			layout: func(t *testing.T) fs.FS {
				return newFakeLayout(t).indexJSON().fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "lists no images",
		},
		{
			name: "schema version 1",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, nested)
				editJSON(t, fsys, "index.json", func(v map[string]any) { v["schemaVersion"] = 1 })
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "schemaVersion 1",
		},
		{
			name: "no tag",
			layout: func(t *testing.T) fs.FS {
				fsys, _ := sampleFS(t, sample.Spec{Name: "core-foo"})
				return fsys
			},
			want:    buildout.ErrNoTag,
			wantMsg: "no org.opencontainers.image.ref.name annotation",
		},
		{
			name: "ref.name is a full reference",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(l.image("linux/amd64"), "docker.io/stagex/core-foo:1.0")).fs
			},
			want:    buildout.ErrNoTag,
			wantMsg: "not a plain tag",
		},
		{
			name: "entries with different tags",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				return l.indexJSON(tagged(m, "1.0"), tagged(m, "latest")).fs
			},
			want:    buildout.ErrAmbiguous,
			wantMsg: `different tags ("1.0", "latest")`,
		},
		{
			name: "one entry tagged, one not",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(l.image("linux/amd64"), "1.0"), onPlatform(l.image("linux/arm64"), "linux/arm64")).fs
			},
			want:    buildout.ErrAmbiguous,
			wantMsg: `("1.0", (none))`,
		},
		{
			name: "two manifests for one platform",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				a := l.image("linux/amd64")
				b := l.image("linux/amd64")
				b2 := l.blobJSON(types.OCIManifestSchema1, json.RawMessage(strings.Replace(string(l.fs[blobPath(b.Digest.String())].Data), `"schemaVersion":2`, `"schemaVersion":2,"annotations":{"x":"y"}`, 1)))
				return l.indexJSON(tagged(a, "1.0"), tagged(b2, "1.0")).fs
			},
			want:    buildout.ErrAmbiguous,
			wantMsg: "both for platform linux/amd64",
		},
		{
			name: "manifest blob missing",
			layout: func(t *testing.T) fs.FS {
				fsys, digests := sampleFS(t, nested)
				delete(fsys, blobPath(digests[0]))
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "blob missing",
		},
		{
			name: "manifest blob altered",
			layout: func(t *testing.T) fs.FS {
				fsys, digests := sampleFS(t, nested)
				data := fsys[blobPath(digests[0])].Data
				fsys[blobPath(digests[0])].Data = []byte(strings.Replace(string(data), `"size":`, `"size": `, 1)[:len(data)])
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "blob content has digest sha256:",
		},
		{
			name: "manifest blob with a different size",
			layout: func(t *testing.T) fs.FS {
				fsys, digests := sampleFS(t, nested)
				fsys[blobPath(digests[0])].Data = append(fsys[blobPath(digests[0])].Data, '\n')
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "bytes, descriptor says",
		},
		{
			name: "manifest blob is a directory",
			layout: func(t *testing.T) fs.FS {
				fsys, digests := sampleFS(t, nested)
				delete(fsys, blobPath(digests[0]))
				fsys[blobPath(digests[0])+"/x"] = &fstest.MapFile{}
				return fsys
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "blob is not a regular file",
		},
		{
			name: "descriptor media type differs from the blob's",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				m.MediaType = types.DockerManifestSchema2
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "blob has media type",
		},
		{
			name: "unknown media type",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(l.blob("application/vnd.cncf.helm.chart.content.v1.tar+gzip", []byte("chart")), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "neither an image index nor an image manifest",
		},
		{
			name: "docker schema 1 manifest",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(l.blob(types.DockerManifestSchema1Signed, []byte(`{"schemaVersion":1}`)), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "neither an image index nor an image manifest",
		},
		{
			name: "artifact manifest",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				cfg := l.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
				m := l.blobJSON(types.OCIManifestSchema1, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg})
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: `not an image manifest: config media type "application/vnd.oci.empty.v1+json"`,
		},
		{
			name: "config missing",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				var man v1.Manifest
				if err := json.Unmarshal(l.fs[blobPath(m.Digest.String())].Data, &man); err != nil {
					t.Fatal(err)
				}
				delete(l.fs, blobPath(man.Config.Digest.String()))
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "config (sha256:",
		},
		{
			name: "layer missing",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				var man v1.Manifest
				if err := json.Unmarshal(l.fs[blobPath(m.Digest.String())].Data, &man); err != nil {
					t.Fatal(err)
				}
				delete(l.fs, blobPath(man.Layers[0].Digest.String()))
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "layer 0 (sha256:",
		},
		{
			name: "index and config disagree on the platform",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(onPlatform(l.image("linux/arm64"), "linux/amd64"), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "index says platform linux/amd64, image config says linux/arm64",
		},
		{
			name: "index and config disagree on the variant",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(onPlatform(l.image("linux/arm/v6"), "linux/arm/v7"), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: `index says variant "v7"`,
		},
		{
			name: "platform with a control character",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				return l.indexJSON(tagged(l.image("linux/amd64\x1b[31m"), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "malformed platform",
		},
		{
			name: "indexes nested too deep",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				d := l.image("linux/amd64")
				for range buildout.MaxIndexDepth {
					d = l.index(d)
				}
				return l.indexJSON(tagged(d, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "nested more than",
		},
		{
			name: "manifest larger than the limit",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				m.Size = buildout.MaxManifestSize + 1
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "blob too large",
		},
		{
			name: "negative size",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				m.Size = -1
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "descriptor says -1",
		},
		{
			name: "upper-case digest",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				m.Digest.Hex = strings.ToUpper(m.Digest.Hex)
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "non-hex character in hash",
		},
		{
			name: "sha512 digest",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				m := l.image("linux/amd64")
				m.Digest = v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("a", 128)}
				return l.indexJSON(tagged(m, "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: `unsupported digest algorithm "sha512"`,
		},
		{
			name: "only attestations",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				att := attestation(l.image("unknown/unknown"), v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)})
				return l.indexJSON(tagged(l.index(att), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "no image manifests, only attestations",
		},
		{
			name: "attestation annotation on a platform image",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				amd := l.image("linux/amd64")
				arm := attestation(l.image("linux/arm64"), amd.Digest)
				arm.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"}
				return l.indexJSON(tagged(l.index(onPlatform(amd, "linux/amd64"), arm), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: "attestation manifest with platform linux/arm64",
		},
		{
			name: "unknown reference type",
			layout: func(t *testing.T) fs.FS {
				l := newFakeLayout(t)
				amd := l.image("linux/amd64")
				other := attestation(l.image("unknown/unknown"), amd.Digest)
				other.Annotations["vnd.docker.reference.type"] = "signature"
				return l.indexJSON(tagged(l.index(onPlatform(amd, "linux/amd64"), other), "1.0")).fs
			},
			want:    buildout.ErrCorrupt,
			wantMsg: `unknown vnd.docker.reference.type "signature"`,
		},
		{
			name:    "name that is no repository name",
			layout:  func(t *testing.T) fs.FS { fsys, _ := sampleFS(t, nested); return fsys },
			imgName: "Core_GCC",
			want:    buildout.ErrBadName,
			wantMsg: `"Core_GCC" is not a repository name component`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := tt.imgName
			if name == "" {
				name = "core-foo"
			}
			img, err := buildout.ReadFS(tt.layout(t), name)
			if err == nil {
				t.Fatalf("ReadFS succeeded, want %v; got %+v", tt.want, img)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFS error = %v, want errors.Is %v", err, tt.want)
			}
			var le *buildout.LayoutError
			if !errors.As(err, &le) || le.Dir != name {
				t.Errorf("ReadFS error = %#v, want *LayoutError with Dir %q", err, name)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ReadFS error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if le != nil && (le.Err.Error() == "" || unicode.IsUpper(rune(le.Err.Error()[0]))) {
				t.Errorf("ReadFS error cause %q does not start lower-case", le.Err)
			}
		})
	}
}

// TestReadFSErrorNamesTheBlob checks that a corrupt blob error says which
// blob, so a maintainer can find it.
func TestReadFSErrorNamesTheBlob(t *testing.T) {
	t.Parallel()
	fsys, digests := sampleFS(t, sample.Spec{Name: "core-foo", Tag: "1.0", Platforms: []string{"linux/amd64", "linux/arm64"}})
	delete(fsys, blobPath(digests[1]))
	_, err := buildout.ReadFS(fsys, "core-foo")
	want := fmt.Sprintf("entry 1 (%s): blob missing", digests[1])
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("ReadFS error = %v, want it to contain %q", err, want)
	}
}
