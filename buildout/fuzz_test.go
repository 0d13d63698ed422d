package buildout_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/tally-sig/tally/buildout"
)

// Seeds for FuzzReadFS: a BuildKit-shaped nested layout. The fuzzer's JSON
// refers to the other blobs by placeholders (@L@ and @LS@ are the layer's
// hex digest and size, @C@ the config's, @M@ the manifest's, @N@ the nested
// index's), so that mutations keep meeting real blobs.
const (
	seedConfig   = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:@L@"]}}`
	seedManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":@CS@,"digest":"sha256:@C@"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":@LS@,"digest":"sha256:@L@"}]}`
	seedNested   = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":@MS@,"digest":"sha256:@M@","platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":@MS@,"digest":"sha256:@M@","annotations":{"vnd.docker.reference.digest":"sha256:@M@","vnd.docker.reference.type":"attestation-manifest"},"platform":{"architecture":"unknown","os":"unknown"}}]}`
	seedIndex    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","size":@NS@,"digest":"sha256:@N@","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`
	seedFlat     = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":@MS@,"digest":"sha256:@M@","annotations":{"org.opencontainers.image.ref.name":"1.0"},"platform":{"architecture":"amd64","os":"linux"}}]}`
)

var (
	fuzzTagRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	fuzzPlatformRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$`)
)

// fuzzLayout stores the blobs in dependency order, filling in the
// placeholders of each from the blobs before it.
func fuzzLayout(layoutFile, index, nested, manifest, config []byte) fstest.MapFS {
	fsys := fstest.MapFS{"oci-layout": {Data: layoutFile}}
	var subst []string
	store := func(key string, raw []byte) []byte {
		for i := 0; i < len(subst); i += 2 {
			raw = bytes.ReplaceAll(raw, []byte(subst[i]), []byte(subst[i+1]))
		}
		sum := sha256.Sum256(raw)
		h := hex.EncodeToString(sum[:])
		fsys["blobs/sha256/"+h] = &fstest.MapFile{Data: raw}
		subst = append(subst, "@"+key+"@", h, "@"+key+"S@", strconv.Itoa(len(raw)))
		return raw
	}
	store("L", []byte("layer"))
	store("C", config)
	store("M", manifest)
	store("N", nested)
	fsys["index.json"] = &fstest.MapFile{Data: store("I", index)}
	return fsys
}

// FuzzReadFS feeds hand-shaped layouts to ReadFS: it must never panic, must
// classify every failure, and whatever it accepts must be backed by the
// bytes in the blob store.
func FuzzReadFS(f *testing.F) {
	good := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	f.Add(good, []byte(seedIndex), []byte(seedNested), []byte(seedManifest), []byte(seedConfig))
	f.Add(good, []byte(seedFlat), []byte(seedNested), []byte(seedManifest), []byte(seedConfig))
	f.Add(good, []byte(seedFlat), []byte(`{}`), []byte(`{"schemaVersion":2}`), []byte(`{}`))
	f.Add([]byte(`{}`), []byte(seedIndex), []byte(seedNested), []byte(seedManifest), []byte(seedConfig))
	f.Fuzz(func(t *testing.T, layoutFile, index, nested, manifest, config []byte) {
		fsys := fuzzLayout(layoutFile, index, nested, manifest, config)
		img, err := buildout.ReadFS(fsys, "core-fuzz")
		if err != nil {
			var le *buildout.LayoutError
			if !errors.As(err, &le) || le.Dir != "core-fuzz" {
				t.Fatalf("error %v is not a *LayoutError for core-fuzz", err)
			}
			for _, sentinel := range []error{buildout.ErrNotLayout, buildout.ErrNoTag, buildout.ErrCorrupt, buildout.ErrAmbiguous} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if img.Name != "core-fuzz" || img.Dir != "core-fuzz" {
			t.Errorf("image named %q in %q, want core-fuzz", img.Name, img.Dir)
		}
		if !fuzzTagRE.MatchString(img.Tag) {
			t.Errorf("accepted tag %q", img.Tag)
		}
		if len(img.Manifests) == 0 {
			t.Fatal("accepted an image without manifests")
		}
		digests := map[string]bool{}
		platforms := map[string]bool{}
		for _, m := range img.Manifests {
			if digests[m.Digest] {
				t.Errorf("manifest %s listed twice", m.Digest)
			}
			digests[m.Digest] = true
			if m.Platform != "" {
				if platforms[m.Platform] || !fuzzPlatformRE.MatchString(m.Platform) {
					t.Errorf("platform %q repeated or malformed", m.Platform)
				}
				platforms[m.Platform] = true
			}
			if m.MediaType != "application/vnd.oci.image.manifest.v1+json" && m.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
				t.Errorf("manifest %s has media type %q", m.Digest, m.MediaType)
			}
			blob, ok := fsys["blobs/sha256/"+m.Digest[len("sha256:"):]]
			if !ok {
				t.Fatalf("manifest %s has no blob", m.Digest)
			}
			sum := sha256.Sum256(blob.Data)
			if "sha256:"+hex.EncodeToString(sum[:]) != m.Digest || int64(len(blob.Data)) != m.Size {
				t.Errorf("manifest %s (%d bytes) does not match its blob", m.Digest, m.Size)
			}
			var v struct {
				SchemaVersion int `json:"schemaVersion"`
			}
			if err := json.Unmarshal(blob.Data, &v); err != nil || v.SchemaVersion != 2 {
				t.Errorf("manifest %s is not a schema 2 JSON object: %v", m.Digest, err)
			}
		}
	})
}

// TestFuzzSeedsAreAccepted keeps the fuzzer's seeds valid, so that it starts
// from layouts ReadFS accepts and mutates them, not only from failures.
func TestFuzzSeedsAreAccepted(t *testing.T) {
	t.Parallel()
	good := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	for name, index := range map[string]string{"nested": seedIndex, "flat": seedFlat} {
		fsys := fuzzLayout(good, []byte(index), []byte(seedNested), []byte(seedManifest), []byte(seedConfig))
		img, err := buildout.ReadFS(fsys, "core-fuzz")
		if err != nil {
			t.Errorf("%s seed: %v", name, err)
			continue
		}
		if len(img.Manifests) != 1 || img.Manifests[0].Platform != "linux/amd64" || img.Tag != "1.0" {
			t.Errorf("%s seed read as %+v, want one linux/amd64 manifest tagged 1.0", name, img)
		}
	}
}
