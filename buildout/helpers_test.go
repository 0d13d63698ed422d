package buildout_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeLayout builds OCI image layouts by hand in memory, for the shapes and
// defects that no real exporter writes.
type fakeLayout struct {
	t  *testing.T
	fs fstest.MapFS
}

func newFakeLayout(t *testing.T) *fakeLayout {
	t.Helper()
	return &fakeLayout{t: t, fs: fstest.MapFS{
		"oci-layout": {Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}}
}

// blob stores raw under its digest and returns a descriptor for it.
func (l *fakeLayout) blob(mt types.MediaType, raw []byte) v1.Descriptor {
	sum := sha256.Sum256(raw)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	l.fs["blobs/sha256/"+h.Hex] = &fstest.MapFile{Data: raw}
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: h}
}

func (l *fakeLayout) blobJSON(mt types.MediaType, v any) v1.Descriptor {
	l.t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mt, raw)
}

// image stores an OCI image (layer, config, manifest) for platform
// "os/arch[/variant]" and returns the manifest descriptor, without platform.
func (l *fakeLayout) image(platform string) v1.Descriptor {
	l.t.Helper()
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		l.t.Fatal(err)
	}
	layer := l.blob(types.OCILayer, []byte("layer for "+platform))
	cfg := l.blobJSON(types.OCIConfigJSON, v1.ConfigFile{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant,
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{layer.Digest}},
	})
	return l.blobJSON(types.OCIManifestSchema1, v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer},
	})
}

// index stores an OCI image index listing descs.
func (l *fakeLayout) index(descs ...v1.Descriptor) v1.Descriptor {
	return l.blobJSON(types.OCIImageIndex, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
}

// indexJSON writes index.json listing descs.
func (l *fakeLayout) indexJSON(descs ...v1.Descriptor) *fakeLayout {
	l.t.Helper()
	raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
	if err != nil {
		l.t.Fatal(err)
	}
	l.fs["index.json"] = &fstest.MapFile{Data: raw}
	return l
}

func tagged(d v1.Descriptor, tag string) v1.Descriptor {
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	return d
}

func onPlatform(d v1.Descriptor, platform string) v1.Descriptor {
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		panic(err)
	}
	d.Platform = p
	return d
}

func attestation(d v1.Descriptor, subject v1.Hash) v1.Descriptor {
	d.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	d.Annotations = map[string]string{
		"vnd.docker.reference.type":   "attestation-manifest",
		"vnd.docker.reference.digest": subject.String(),
	}
	return d
}

// loadDir copies a directory tree into a MapFS.
func loadDir(t *testing.T, dir string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// blobSum checks, independently of buildout, that the blob named by digest
// hashes to it, and returns its size.
func blobSum(t *testing.T, fsys fs.FS, digest string) int64 {
	t.Helper()
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "blobs/sha256/"+h.Hex)
	if err != nil {
		t.Fatalf("reading blob of %s: %v", digest, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != h.Hex {
		t.Fatalf("blob of %s hashes to %s", digest, got)
	}
	return int64(len(data))
}
