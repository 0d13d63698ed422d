package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/quorum"
)

// TestInteropForeignSignatures: signature files made by the stock tools,
// not by tally, are read and counted: gpg --sign (which compresses by
// default) and skopeo standalone-sign (through gpgme), each also with
// dave's key, which signs only with a subkey.
func TestInteropForeignSignatures(t *testing.T) {
	interop.Require(t, "gpg", "gpg-agent", "skopeo")
	home := interop.GPGHome(t, testkeys.Secret("alice"), testkeys.Secret("carol"), testkeys.Secret("dave"))
	env := []string{"GNUPGHOME=" + home}
	dir := t.TempDir()
	images := vfWrite(t, filepath.Join(dir, "out"), sample.Spec{Name: "core-a", Tag: "1.0"}, sample.Spec{Name: "core-b", Tag: "2.0"})

	// gpgSign signs a payload with gpg's defaults (compressed).
	gpgSign := func(who string, img buildout.Image) []byte {
		t.Helper()
		in := filepath.Join(dir, who+"-"+img.Name+".json")
		if err := os.WriteFile(in, fxPayload(t, img.Name, img.Tag, img.Manifests[0].Digest), 0o644); err != nil {
			t.Fatal(err)
		}
		interop.Run(t, env, "gpg", "--batch", "--yes", "--local-user", testkeys.Fingerprint(who), "--output", in+".sig", "--sign", in)
		return readFile(t, in+".sig")
	}
	// skopeoSign signs the manifest file of the image's layout.
	skopeoSign := func(who string, img buildout.Image) []byte {
		t.Helper()
		manifest := filepath.Join(img.Dir, "blobs", "sha256", strings.TrimPrefix(img.Manifests[0].Digest, "sha256:"))
		out := filepath.Join(dir, who+"-"+img.Name+".skopeo.sig")
		interop.Run(t, env, "skopeo", "standalone-sign", "--output", out, manifest, "stagex/"+img.Name+":"+img.Tag, testkeys.Fingerprint(who))
		return readFile(t, out)
	}

	a, b := images[0], images[1]
	files := map[string][]byte{
		fxPath("core-a", a.Manifests[0].Digest, 1): gpgSign("alice", a),
		fxPath("core-a", a.Manifests[0].Digest, 2): gpgSign("dave", a),
		fxPath("core-a", a.Manifests[0].Digest, 3): skopeoSign("carol", a),
		fxPath("core-b", b.Manifests[0].Digest, 1): skopeoSign("alice", b),
		fxPath("core-b", b.Manifests[0].Digest, 2): skopeoSign("dave", b),
		fxPath("core-b", b.Manifests[0].Digest, 3): gpgSign("carol", b),
	}
	var changes []gitstoreChange
	for p, blob := range files {
		if blob[0] != 0xA3 && blob[0] != 0xC8 {
			t.Errorf("%s starts with %#02x, not a compressed data packet: the test would not cover compression", p, blob[0])
		}
		changes = append(changes, file(p, blob))
	}
	r := newFxRepo(t, 3, fxPublic("alice", "carol", "dave")...)
	r.commit(fxEpoch.Add(time.Hour), changes...)
	rep := r.mustEvaluate(time.Now(), quorum.EvaluateOptions{}).Tally(quorum.Scope{})

	for _, p := range rep.Problems {
		// dave signs with a subkey: it counts, and older clients refuse it
		if p.Kind != quorum.KindClientsRefuse || !strings.Contains(p.Error, "subkey") {
			t.Errorf("problem with a signature made by gpg or skopeo: %+v", p)
		}
	}
	for _, img := range images {
		st := fxImage(t, rep, "stagex/"+img.Name+":"+img.Tag, "")
		row := fxRow(t, st, img.Manifests[0].Digest)
		if row.Count != 3 || !row.Quorum || !st.Quorum {
			t.Errorf("%s: %d of 3 counted: %+v", img.Name, row.Count, row.Signers)
		}
		for _, s := range row.Signers {
			if !s.Counted || s.Subkey != (s.Fingerprint == testkeys.Fingerprint("dave")) {
				t.Errorf("%s: signer %+v (dave signs with a subkey, which counts for his primary key)", img.Name, s)
			}
		}
	}
	if !rep.QuorumMet() || rep.Invalid() {
		t.Errorf("met %v, invalid %v", rep.QuorumMet(), rep.Invalid())
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
