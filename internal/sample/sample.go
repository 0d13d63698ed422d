package sample

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations and media types of BuildKit's OCI exporter that the samples
// reproduce.
const (
	refNameAnnotation         = "org.opencontainers.image.ref.name"
	imageNameAnnotation       = "io.containerd.image.name"
	createdAnnotation         = "org.opencontainers.image.created"
	referenceTypeAnnotation   = "vnd.docker.reference.type"
	referenceDigestAnnotation = "vnd.docker.reference.digest"
	attestationManifest       = "attestation-manifest"
	predicateTypeAnnotation   = "in-toto.io/predicate-type"
	inTotoMediaType           = types.MediaType("application/vnd.in-toto+json")
	provenancePredicate       = "https://slsa.dev/provenance/v0.2"
)

// Namespace is the repository namespace of the sample images, as in
// docker.io/stagex/core-gcc.
const Namespace = "stagex"

// DefaultPlatform is the platform of a Spec that names none.
const DefaultPlatform = "linux/amd64"

// epoch is the creation time of every sample image, like a build run with
// SOURCE_DATE_EPOCH=1.
var epoch = time.Unix(1, 0).UTC()

// Spec describes one sample image layout.
type Spec struct {
	// Name is the layout's directory name under the output directory, such
	// as "core-gcc".
	Name string
	// Tag is written as the org.opencontainers.image.ref.name annotation of
	// the index.json entry. An empty Tag writes no such annotation (a broken
	// layout, for error tests).
	Tag string
	// Platforms lists "os/arch[/variant]" platforms, one image manifest
	// each, in this order. Empty means DefaultPlatform.
	Platforms []string
	// Seed goes into the image content: the same Spec with another Seed is
	// the same package from a builder whose output diverged.
	Seed string
	// Flat writes index.json listing the image manifests directly, without
	// BuildKit's nested image index and attestation manifests.
	Flat bool
}

// Write writes one OCI image layout per spec into outDir/<Name>/ and returns,
// for each Name, the digests ("sha256:<hex>") of its per-platform image
// manifests in the order of Spec.Platforms. The layout directories must not
// exist yet; outDir is created if needed.
//
// By default a layout has BuildKit's nested shape: index.json holds one entry
// (with the tag annotation) pointing to an image index, which lists the
// per-platform image manifests and then one attestation manifest per platform.
func Write(outDir string, specs ...Spec) (map[string][]string, error) {
	digests := make(map[string][]string, len(specs))
	for _, spec := range specs {
		if _, dup := digests[spec.Name]; dup {
			return nil, fmt.Errorf("writing sample %q: name given twice", spec.Name)
		}
		d, err := writeOne(outDir, spec)
		if err != nil {
			return nil, fmt.Errorf("writing sample %q: %w", spec.Name, err)
		}
		digests[spec.Name] = d
	}
	return digests, nil
}

// Many returns n specs named bench-0000, bench-0001, … with tag 1.0.0 and the
// given seed, for benchmarks that need a full out/ directory.
func Many(n int, seed string) []Spec {
	specs := make([]Spec, n)
	for i := range specs {
		specs[i] = Spec{Name: fmt.Sprintf("bench-%04d", i), Tag: "1.0.0", Seed: seed}
	}
	return specs
}

func writeOne(outDir string, spec Spec) ([]string, error) {
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	platforms, err := parsePlatforms(spec.Platforms)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(outDir, spec.Name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%s already exists", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}

	images := make([]v1.Image, len(platforms))
	digests := make([]string, len(platforms))
	for i, p := range platforms {
		img, err := platformImage(spec, p)
		if err != nil {
			return nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		images[i], digests[i] = img, d.String()
	}

	path, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	top := topAnnotations(spec)
	if spec.Flat {
		for i, img := range images {
			desc, err := writeImage(path, img, &platforms[i], top)
			if err != nil {
				return nil, err
			}
			if err := path.AppendDescriptor(desc); err != nil {
				return nil, err
			}
		}
	} else {
		desc, err := writeNestedIndex(path, spec, platforms, images)
		if err != nil {
			return nil, err
		}
		desc.Annotations = top
		if err := path.AppendDescriptor(desc); err != nil {
			return nil, err
		}
	}
	if err := normalizeModes(dir); err != nil {
		return nil, err
	}
	return digests, nil
}

// checkName refuses names that would not stay one directory below outDir.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("name %q is not a plain directory name", name)
	}
	return nil
}

func parsePlatforms(specs []string) ([]v1.Platform, error) {
	if len(specs) == 0 {
		specs = []string{DefaultPlatform}
	}
	platforms := make([]v1.Platform, len(specs))
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("parsing platform %q: %w", s, err)
		}
		if p.OS == "" || p.Architecture == "" || p.OSVersion != "" {
			return nil, fmt.Errorf("parsing platform %q: want os/arch[/variant]", s)
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("platform %q given twice", s)
		}
		seen[p.String()] = true
		platforms[i] = *p
	}
	return platforms, nil
}

// topAnnotations are the annotations BuildKit's OCI exporter puts on the
// index.json entry.
func topAnnotations(spec Spec) map[string]string {
	a := map[string]string{createdAnnotation: epoch.Format(time.RFC3339)}
	if spec.Tag != "" {
		a[refNameAnnotation] = spec.Tag
		a[imageNameAnnotation] = "docker.io/" + Namespace + "/" + spec.Name + ":" + spec.Tag
	}
	return a
}

// platformImage is a one-layer OCI image whose config names the platform.
func platformImage(spec Spec, p v1.Platform) (v1.Image, error) {
	content := fmt.Sprintf("name=%s\ntag=%s\nplatform=%s\nseed=%s\n", spec.Name, spec.Tag, p.String(), spec.Seed)
	layerTar, err := tarOneFile("usr/share/sample/"+spec.Name, []byte(content))
	if err != nil {
		return nil, err
	}
	layer, err := newGzipLayer(layerTar)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "COPY . / # sample"},
	})
	if err != nil {
		return nil, err
	}
	return withPlatformConfig(img, p.OS, p.Architecture, p.Variant)
}

// attestationImage is shaped like a BuildKit provenance attestation manifest
// for the image with the given digest.
func attestationImage(spec Spec, p v1.Platform, subject v1.Hash) (v1.Image, error) {
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": provenancePredicate,
		"subject": []any{map[string]any{
			"name":   fmt.Sprintf("pkg:docker/%s/%s@%s?platform=%s", Namespace, spec.Name, spec.Tag, strings.ReplaceAll(p.String(), "/", "%2F")),
			"digest": map[string]string{subject.Algorithm: subject.Hex},
		}},
		"predicate": map[string]any{
			"buildType": "https://mobyproject.org/buildkit@v1",
			"metadata":  map[string]any{"buildInvocationID": "sample-" + spec.Seed},
		},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(statement, inTotoMediaType),
		Annotations: map[string]string{predicateTypeAnnotation: provenancePredicate},
	})
	if err != nil {
		return nil, err
	}
	// Like BuildKit's, the config lists no diff IDs: an in-toto statement
	// is not a file system layer.
	return withPlatformConfig(img, "unknown", "unknown", "", func(cfg *v1.ConfigFile) {
		cfg.RootFS.DiffIDs = nil
		cfg.History = nil
	})
}

func withPlatformConfig(img v1.Image, os, arch, variant string, edits ...func(*v1.ConfigFile)) (v1.Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = os, arch, variant
	cfg.Created = v1.Time{Time: epoch}
	for _, edit := range edits {
		edit(cfg)
	}
	return mutate.ConfigFile(img, cfg)
}

// writeNestedIndex writes BuildKit's image index (the platform images, then
// one attestation manifest per image) with everything it references, and
// returns its descriptor.
func writeNestedIndex(path layout.Path, spec Spec, platforms []v1.Platform, images []v1.Image) (v1.Descriptor, error) {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i, img := range images {
		desc, err := writeImage(path, img, &platforms[i], nil)
		if err != nil {
			return v1.Descriptor{}, err
		}
		index.Manifests = append(index.Manifests, desc)
	}
	for i, img := range images {
		d, err := img.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		att, err := attestationImage(spec, platforms[i], d)
		if err != nil {
			return v1.Descriptor{}, err
		}
		desc, err := writeImage(path, att, &v1.Platform{OS: "unknown", Architecture: "unknown"}, map[string]string{
			referenceDigestAnnotation: d.String(),
			referenceTypeAnnotation:   attestationManifest,
		})
		if err != nil {
			return v1.Descriptor{}, err
		}
		index.Manifests = append(index.Manifests, desc)
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return writeBlob(path, index.MediaType, raw)
}

// writeImage writes img's blobs and returns a descriptor shaped like
// BuildKit's: media type, size, digest, annotations, platform, and no
// artifactType (which partial.Descriptor would add).
func writeImage(path layout.Path, img v1.Image, p *v1.Platform, annotations map[string]string) (v1.Descriptor, error) {
	if err := path.WriteImage(img); err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Annotations: annotations, Platform: p}
	desc.Digest, _, err = v1.SHA256(bytes.NewReader(raw))
	return desc, err
}

func writeBlob(path layout.Path, mt types.MediaType, raw []byte) (v1.Descriptor, error) {
	digest, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := path.WriteBlob(digest, io.NopCloser(bytes.NewReader(raw))); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: digest}, nil
}

// tarOneFile is an uncompressed tar stream holding one regular file (and its
// parent directories) with fixed metadata, so its bytes never vary.
func tarOneFile(name string, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/") + "/"
		h := &tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// normalizeModes makes the files of a written layout 0644 and its
// directories 0755 (go-containerregistry asks for 0777 and leaves the rest to
// the umask), so committed fixtures carry no executable bits.
func normalizeModes(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}

// gzipLayer is a layer compressed once, up front: go-containerregistry's
// tarball layers compress again on every read, which made writing hundreds
// of samples slow.
type gzipLayer struct {
	compressed   []byte
	uncompressed []byte
	digest       v1.Hash
	diffID       v1.Hash
}

var _ v1.Layer = (*gzipLayer)(nil)

func newGzipLayer(uncompressed []byte) (*gzipLayer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(uncompressed); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l := &gzipLayer{compressed: buf.Bytes(), uncompressed: uncompressed}
	if l.digest, _, err = v1.SHA256(bytes.NewReader(l.compressed)); err != nil {
		return nil, err
	}
	if l.diffID, _, err = v1.SHA256(bytes.NewReader(uncompressed)); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *gzipLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *gzipLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *gzipLayer) Size() (int64, error)     { return int64(len(l.compressed)), nil }
func (l *gzipLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *gzipLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *gzipLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}
