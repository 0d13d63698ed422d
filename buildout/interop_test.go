package buildout_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// TestSkopeoAgreesOnDigests has the real skopeo copy each platform image of
// the sample layouts out of its OCI layout (oci:<dir>:<tag>, the way a
// maintainer would push it) and checks that the manifest skopeo copied is
// byte for byte the one buildout says will be signed.
func TestSkopeoAgreesOnDigests(t *testing.T) {
	interop.Require(t, "skopeo")
	t.Parallel()
	out := t.TempDir()
	_, err := sample.Write(out,
		sample.Spec{Name: "core-nested", Tag: "1.0.0", Platforms: []string{"linux/amd64", "linux/arm64"}},
		sample.Spec{Name: "core-flat", Tag: "2.0.0", Flat: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	images, err := buildout.Read(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 2 {
		t.Fatalf("Read found %d images, want 2", len(images))
	}
	policy := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	checked := 0
	for _, img := range images {
		for _, m := range img.Manifests {
			osName, arch, ok := strings.Cut(m.Platform, "/")
			if !ok {
				t.Fatalf("%s: manifest %s has platform %q", img.Name, m.Digest, m.Platform)
			}
			dst := t.TempDir()
			_, err := interop.RunErr(t, "", nil, "skopeo", "--policy", policy,
				"--override-os", osName, "--override-arch", arch,
				"copy", "oci:"+img.Dir+":"+img.Tag, "dir:"+dst)
			if err != nil {
				t.Fatalf("%s %s: %v", img.Name, m.Platform, err)
			}
			raw, err := os.ReadFile(filepath.Join(dst, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			if got := "sha256:" + hex.EncodeToString(sum[:]); got != m.Digest {
				t.Errorf("%s %s: skopeo copied manifest %s, buildout says %s", img.Name, m.Platform, got, m.Digest)
			}
			checked++
		}
	}
	if checked != 3 {
		t.Errorf("checked %d manifests, want 3", checked)
	}
}
