package buildout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is the build output of one package: one OCI image layout directory.
type Image struct {
	// Name is the layout's directory name, such as "core-gcc".
	Name string
	// Dir is the layout directory as Read found it (for ReadFS, Name).
	Dir string
	// Tag is the org.opencontainers.image.ref.name annotation of the
	// index.json entries, such as "14.2.0".
	Tag string
	// Manifests are the per-platform image manifests, in the order the
	// indexes list them; attestation manifests are left out.
	Manifests []Manifest
}

// Manifest is one per-platform image manifest: the thing that gets signed.
type Manifest struct {
	// Digest is "sha256:" and the lower-case hex SHA-256 of the exact
	// manifest blob bytes.
	Digest string
	// Platform is "os/arch" or "os/arch/variant", such as "linux/amd64" or
	// "linux/arm64/v8"; empty when neither the index nor the image config
	// says.
	Platform string
	// MediaType is the manifest's media type: the OCI image manifest or the
	// Docker schema 2 manifest.
	MediaType string
	// Size is the manifest blob's length in bytes.
	Size int64
}

// Limits that keep a hostile layout from exhausting memory or time.
const (
	// MaxManifestSize is the largest index.json, image index, image manifest
	// or image config blob that is read, in bytes (the limit containers/image
	// applies to manifests).
	MaxManifestSize = 4 << 20
	// MaxLayoutBytes is the most JSON read from one layout, in bytes.
	MaxLayoutBytes = 64 << 20
	// MaxIndexDepth is how deeply image indexes may nest, counting
	// index.json: BuildKit's nested layouts need 2.
	MaxIndexDepth = 4
)

// Annotations that decide what a layout entry is.
const (
	refNameAnnotation       = "org.opencontainers.image.ref.name"
	referenceTypeAnnotation = "vnd.docker.reference.type"
	attestationManifest     = "attestation-manifest"
	maxOCILayoutFileSize    = 64 << 10
)

var (
	// nameRE is a repository path component, as the distribution
	// reference grammar defines it.
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	// tagRE is a tag, as the distribution reference grammar defines it.
	tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// platformPartRE is one os, architecture or variant field.
	platformPartRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	// sha256HexRE is the canonical hex form of a SHA-256 digest.
	sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxNameLength bounds an image name, well inside the 255 bytes a whole
// repository name may have.
const maxNameLength = 128

// ReadFS reads the OCI image layout rooted at fsys, the build output of the
// package called name, and returns its per-platform image manifests.
//
// It follows BuildKit's nested layout (index.json lists an image index that
// lists the platform manifests) as well as flat ones (index.json lists the
// image manifests), skips BuildKit attestation manifests and refuses every
// other kind of entry. Each manifest's digest is computed from the blob bytes
// and must match its descriptor's digest and size; its image config must be
// present and agree with the descriptor's platform; its layer blobs must be
// present with the declared size (their content is not hashed).
//
// All index.json entries must carry the same tag: several entries are normal
// for a flat multi-platform layout, but entries with different tags (as when
// one build was exported under several names) are refused with ErrAmbiguous,
// since signing under a guessed tag would sign the wrong identity.
//
// Errors are *LayoutError with Dir set to name.
func ReadFS(fsys fs.FS, name string) (Image, error) {
	img, err := readLayout(fsys, name)
	if err != nil {
		return Image{}, &LayoutError{Dir: name, Err: err}
	}
	img.Dir = name
	return img, nil
}

// checkName returns an error wrapping ErrBadName unless name can be a
// repository name component.
func checkName(name string) error {
	if len(name) > maxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q is not a repository name component (lower-case letters, digits, and . _ - between them)", ErrBadName, name)
	}
	return nil
}

// layoutReader walks one layout's indexes and collects its manifests.
type layoutReader struct {
	fsys      fs.FS
	budget    int64               // JSON bytes still allowed
	walked    map[string]bool     // index digests already walked
	listed    map[string]bool     // manifest digests already collected
	platforms map[string]Manifest // collected manifests by platform
	manifests []Manifest
}

func readLayout(fsys fs.FS, name string) (Image, error) {
	if err := checkName(name); err != nil {
		return Image{}, err
	}
	r := &layoutReader{
		fsys:      fsys,
		budget:    MaxLayoutBytes,
		walked:    map[string]bool{},
		listed:    map[string]bool{},
		platforms: map[string]Manifest{},
	}
	if err := r.checkOCILayout(); err != nil {
		return Image{}, err
	}
	index, err := r.readIndexJSON()
	if err != nil {
		return Image{}, err
	}
	tag, err := indexTag(index)
	if err != nil {
		return Image{}, err
	}
	for i, d := range index.Manifests {
		if err := r.descriptor(d, 1, fmt.Sprintf("index.json entry %d", i)); err != nil {
			return Image{}, err
		}
	}
	if len(r.manifests) == 0 {
		return Image{}, corrupt("no image manifests, only attestations")
	}
	return Image{Name: name, Tag: tag, Manifests: r.manifests}, nil
}

// checkOCILayout checks the oci-layout marker file.
func (r *layoutReader) checkOCILayout() error {
	raw, err := r.readFile("oci-layout", maxOCILayoutFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := fs.Stat(r.fsys, "manifest.json"); statErr == nil {
			return fmt.Errorf("%w: no oci-layout file, but a manifest.json as `docker save` writes: export the build with an OCI exporter instead", ErrNotLayout)
		}
		return fmt.Errorf("%w: no oci-layout file", ErrNotLayout)
	}
	if err != nil {
		return err
	}
	var marker struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	if err := unmarshalStrict(raw, &marker); err != nil {
		return corrupt("oci-layout: %v", err)
	}
	if marker.ImageLayoutVersion != "1.0.0" {
		return corrupt("oci-layout: unsupported imageLayoutVersion %q (want 1.0.0)", marker.ImageLayoutVersion)
	}
	return nil
}

func (r *layoutReader) readIndexJSON() (*v1.IndexManifest, error) {
	raw, err := r.readFile("index.json", MaxManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no index.json file", ErrNotLayout)
	}
	if err != nil {
		return nil, err
	}
	r.budget -= int64(len(raw))
	index, err := parseIndex(raw)
	if err != nil {
		return nil, corrupt("index.json: %v", err)
	}
	if index.MediaType != "" && index.MediaType != types.OCIImageIndex {
		return nil, corrupt("index.json: media type %q, want %q", index.MediaType, types.OCIImageIndex)
	}
	if len(index.Manifests) == 0 {
		return nil, corrupt("index.json lists no images")
	}
	return index, nil
}

// readFile reads a small regular file at the layout root. A missing file
// gives an error wrapping fs.ErrNotExist.
func (r *layoutReader) readFile(name string, limit int64) ([]byte, error) {
	info, err := fs.Stat(r.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, corrupt("%s is not a regular file", name)
	}
	if info.Size() > limit {
		return nil, corrupt("%s is too large (%d bytes, limit %d)", name, info.Size(), limit)
	}
	raw, err := readLimited(r.fsys, name, limit)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(raw)) > limit {
		return nil, corrupt("%s is too large (over %d bytes)", name, limit)
	}
	return raw, nil
}

// readLimited reads at most limit+1 bytes of a file.
func readLimited(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// indexTag returns the one tag that every index.json entry carries.
func indexTag(index *v1.IndexManifest) (string, error) {
	var tags []string
	for _, d := range index.Manifests {
		tag := d.Annotations[refNameAnnotation]
		if !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	if len(tags) > 1 {
		for i, t := range tags {
			if t == "" {
				tags[i] = "(none)"
			} else {
				tags[i] = fmt.Sprintf("%q", t)
			}
		}
		return "", fmt.Errorf("%w: index.json entries carry different tags (%s): export each image under one name", ErrAmbiguous, strings.Join(tags, ", "))
	}
	tag := tags[0]
	if tag == "" {
		return "", fmt.Errorf("%w: index.json has no %s annotation", ErrNoTag, refNameAnnotation)
	}
	if !tagRE.MatchString(tag) {
		return "", fmt.Errorf("%w: %s %q is not a plain tag", ErrNoTag, refNameAnnotation, tag)
	}
	return tag, nil
}

// descriptor follows one descriptor found at where, depth indexes deep.
func (r *layoutReader) descriptor(d v1.Descriptor, depth int, where string) error {
	if err := checkDigest(d.Digest); err != nil {
		return corrupt("%s: %v", where, err)
	}
	where = fmt.Sprintf("%s (%s)", where, d.Digest)
	if refType, ok := d.Annotations[referenceTypeAnnotation]; ok {
		if refType != attestationManifest {
			return corrupt("%s: unknown %s %q", where, referenceTypeAnnotation, refType)
		}
		if d.Platform != nil && (d.Platform.OS != "unknown" || d.Platform.Architecture != "unknown") {
			return corrupt("%s: attestation manifest with platform %s, want unknown/unknown", where, d.Platform.String())
		}
		if !isImageManifest(d.MediaType) {
			return corrupt("%s: attestation with media type %q", where, d.MediaType)
		}
		return nil // BuildKit attestation: not an image to sign.
	}
	switch {
	case isIndex(d.MediaType):
		return r.index(d, depth, where)
	case isImageManifest(d.MediaType):
		return r.imageManifest(d, where)
	default:
		return corrupt("%s: media type %q is neither an image index nor an image manifest", where, d.MediaType)
	}
}

func (r *layoutReader) index(d v1.Descriptor, depth int, where string) error {
	if depth >= MaxIndexDepth {
		return corrupt("%s: image indexes nested more than %d deep", where, MaxIndexDepth)
	}
	// Content addressing rules out cycles (an index cannot hold its own
	// digest) and the depth limit bounds the rest; an index listed twice is
	// walked once, so a hostile DAG cannot multiply the work.
	if r.walked[d.Digest.String()] {
		return nil
	}
	r.walked[d.Digest.String()] = true
	raw, err := r.readBlob(d, where)
	if err != nil {
		return err
	}
	index, err := parseIndex(raw)
	if err != nil {
		return corrupt("%s: %v", where, err)
	}
	if index.MediaType != "" && index.MediaType != d.MediaType {
		return corrupt("%s: blob has media type %q, descriptor says %q", where, index.MediaType, d.MediaType)
	}
	for i, child := range index.Manifests {
		if err := r.descriptor(child, depth+1, fmt.Sprintf("%s entry %d", where, i)); err != nil {
			return err
		}
	}
	return nil
}

func (r *layoutReader) imageManifest(d v1.Descriptor, where string) error {
	digest := d.Digest.String()
	if r.listed[digest] {
		return nil // the same manifest listed twice is still one image
	}
	raw, err := r.readBlob(d, where)
	if err != nil {
		return err
	}
	if err := checkJSON(raw); err != nil {
		return corrupt("%s: %v", where, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return corrupt("%s: %v", where, err)
	}
	if m.SchemaVersion != 2 {
		return corrupt("%s: schemaVersion %d, want 2", where, m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != d.MediaType {
		return corrupt("%s: blob has media type %q, descriptor says %q", where, m.MediaType, d.MediaType)
	}
	if !isImageConfig(m.Config.MediaType) {
		return corrupt("%s: not an image manifest: config media type %q", where, m.Config.MediaType)
	}
	cfgPlatform, err := r.configPlatform(m.Config, where)
	if err != nil {
		return err
	}
	for i, l := range m.Layers {
		if err := r.checkLayer(l, fmt.Sprintf("%s layer %d", where, i)); err != nil {
			return err
		}
	}
	platform, err := manifestPlatform(d.Platform, cfgPlatform)
	if err != nil {
		return corrupt("%s: %v", where, err)
	}
	if other, ok := r.platforms[platform]; ok && platform != "" {
		return fmt.Errorf("%w: manifests %s and %s are both for platform %s", ErrAmbiguous, other.Digest, digest, platform)
	}
	man := Manifest{Digest: digest, Platform: platform, MediaType: string(d.MediaType), Size: d.Size}
	r.listed[digest] = true
	r.platforms[platform] = man
	r.manifests = append(r.manifests, man)
	return nil
}

// configPlatform reads the image config and returns its os, architecture and
// variant.
func (r *layoutReader) configPlatform(d v1.Descriptor, where string) (v1.Platform, error) {
	where = fmt.Sprintf("%s config", where)
	if err := checkDigest(d.Digest); err != nil {
		return v1.Platform{}, corrupt("%s: %v", where, err)
	}
	where = fmt.Sprintf("%s (%s)", where, d.Digest)
	raw, err := r.readBlob(d, where)
	if err != nil {
		return v1.Platform{}, err
	}
	if err := checkJSON(raw); err != nil {
		return v1.Platform{}, corrupt("%s: %v", where, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return v1.Platform{}, corrupt("%s: %v", where, err)
	}
	return v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
}

// checkLayer checks that a layer blob is present with the declared size.
// Non-distributable layers, which a layout need not hold, are not checked.
func (r *layoutReader) checkLayer(d v1.Descriptor, where string) error {
	if err := checkDigest(d.Digest); err != nil {
		return corrupt("%s: %v", where, err)
	}
	if !d.MediaType.IsDistributable() || len(d.URLs) > 0 {
		return nil
	}
	where = fmt.Sprintf("%s (%s)", where, d.Digest)
	_, err := r.statBlob(d, where)
	return err
}

// manifestPlatform combines the platform an index gives a manifest with the
// one its config states; they must agree where both speak.
func manifestPlatform(desc *v1.Platform, cfg v1.Platform) (string, error) {
	p := cfg
	if desc != nil && (desc.OS != "" || desc.Architecture != "") {
		if cfg.OS != "" && (desc.OS != cfg.OS || desc.Architecture != cfg.Architecture) {
			return "", fmt.Errorf("index says platform %s/%s, image config says %s/%s", desc.OS, desc.Architecture, cfg.OS, cfg.Architecture)
		}
		if desc.Variant != "" && cfg.Variant != "" && desc.Variant != cfg.Variant {
			return "", fmt.Errorf("index says variant %q, image config says %q", desc.Variant, cfg.Variant)
		}
		p = v1.Platform{OS: desc.OS, Architecture: desc.Architecture, Variant: desc.Variant}
		if p.Variant == "" {
			p.Variant = cfg.Variant
		}
	}
	if p.OS == "" && p.Architecture == "" && p.Variant == "" {
		return "", nil
	}
	parts := []string{p.OS, p.Architecture}
	if p.Variant != "" {
		parts = append(parts, p.Variant)
	}
	for _, part := range parts {
		if !platformPartRE.MatchString(part) {
			return "", fmt.Errorf("malformed platform %q", strings.Join(parts, "/"))
		}
	}
	return strings.Join(parts, "/"), nil
}

// statBlob checks that the blob d names is a regular file of d's size and
// returns its path.
func (r *layoutReader) statBlob(d v1.Descriptor, where string) (string, error) {
	path := "blobs/sha256/" + d.Digest.Hex
	info, err := fs.Stat(r.fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", corrupt("%s: blob missing", where)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if !info.Mode().IsRegular() {
		return "", corrupt("%s: blob is not a regular file", where)
	}
	if d.Size < 0 || info.Size() != d.Size {
		return "", corrupt("%s: blob has %d bytes, descriptor says %d", where, info.Size(), d.Size)
	}
	return path, nil
}

// readBlob reads a JSON blob within the size limits and checks it against
// the descriptor's size and digest.
func (r *layoutReader) readBlob(d v1.Descriptor, where string) ([]byte, error) {
	if d.Size > MaxManifestSize {
		return nil, corrupt("%s: blob too large (%d bytes, limit %d)", where, d.Size, MaxManifestSize)
	}
	if d.Size > r.budget {
		return nil, corrupt("%s: layout holds more than %d bytes of manifests", where, MaxLayoutBytes)
	}
	path, err := r.statBlob(d, where)
	if err != nil {
		return nil, err
	}
	raw, err := readLimited(r.fsys, path, d.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: reading blob: %w", where, err)
	}
	if int64(len(raw)) != d.Size {
		return nil, corrupt("%s: blob changed size while being read", where)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != d.Digest.Hex {
		return nil, corrupt("%s: blob content has digest sha256:%s", where, got)
	}
	r.budget -= d.Size
	return raw, nil
}

// checkDigest accepts only canonical sha256 digests: they name blob paths.
func checkDigest(h v1.Hash) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", h.Algorithm)
	}
	if !sha256HexRE.MatchString(h.Hex) {
		return fmt.Errorf("digest %q is not lower-case hex", h.String())
	}
	return nil
}

// parseIndex parses an image index strictly enough for signing.
func parseIndex(raw []byte) (*v1.IndexManifest, error) {
	if err := checkJSON(raw); err != nil {
		return nil, err
	}
	index, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if index.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", index.SchemaVersion)
	}
	return index, nil
}

// checkJSON refuses what the go-containerregistry parsers would let pass: a
// JSON value followed by more data, or a value that is not an object.
func checkJSON(raw []byte) error {
	if !json.Valid(raw) {
		return errors.New("not valid JSON")
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	return nil
}

// unmarshalStrict decodes one JSON object and nothing after it.
func unmarshalStrict(raw []byte, v any) error {
	if err := checkJSON(raw); err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isImageManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func isImageConfig(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON
}
