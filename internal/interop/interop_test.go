package interop_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
)

// writeLayout writes a small random image as an OCI layout tagged tag and
// returns the layout directory and the image's manifest digest. The image has
// OCI media types: skopeo 1.9.3's oci: transport does not see an index.json
// entry with a Docker media type ("no descriptor found for reference"), which
// is what random.Image would give.
func writeLayout(t *testing.T, tag string) (string, v1.Hash) {
	t.Helper()
	layer, err := random.Layer(256, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
	})); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, digest
}

// remoteDigest reads ref from the registry with go-containerregistry.
func remoteDigest(t *testing.T, ref string) (v1.Hash, error) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

func TestRegistryPushReadRestart(t *testing.T) {
	interop.Require(t, "skopeo", "docker-registry")
	reg := interop.StartRegistry(t)
	if !strings.HasPrefix(reg.Addr, "127.0.0.1:") {
		t.Fatalf("registry address %q is not on loopback", reg.Addr)
	}
	dir, want := writeLayout(t, "1.0")
	ref := reg.Addr + "/stagex/core-test:1.0"
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	regd := t.TempDir()
	if err := interop.SkopeoCopy(t, accept, regd, "oci:"+dir+":1.0", "docker://"+ref); err != nil {
		t.Fatal(err)
	}

	got, err := remoteDigest(t, ref)
	if err != nil {
		t.Fatalf("reading pushed image: %v", err)
	}
	if got != want {
		t.Errorf("pushed digest %s, want %s", got, want)
	}

	reg.Stop()
	if _, err := remoteDigest(t, ref); err == nil {
		t.Fatal("stopped registry still answers")
	}
	reg.Stop() // a second Stop does nothing
	reg.Start()
	got, err = remoteDigest(t, ref)
	if err != nil {
		t.Fatalf("reading after restart: %v\nregistry log:\n%s", err, reg.Log())
	}
	if got != want {
		t.Errorf("digest after restart %s, want %s", got, want)
	}
}

func TestSkopeoPolicyAcceptAndReject(t *testing.T) {
	interop.Require(t, "skopeo", "docker-registry")
	reg := interop.StartRegistry(t)
	dir, _ := writeLayout(t, "2.0")
	ref := "docker://" + reg.Addr + "/stagex/core-test:2.0"
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	regd := t.TempDir()
	if err := interop.SkopeoCopy(t, accept, regd, "oci:"+dir+":2.0", ref); err != nil {
		t.Fatal(err)
	}

	reject := interop.WritePolicy(t, interop.DockerPolicy(reg.Addr+"/stagex", interop.Reject()))
	err := interop.SkopeoCopy(t, reject, regd, ref, "dir:"+t.TempDir())
	if err == nil {
		t.Fatal("skopeo copied an image that the policy rejects")
	}
	if !strings.Contains(err.Error(), "rejected") {
		t.Errorf("refusal does not carry skopeo's reason: %v", err)
	}

	if err := interop.SkopeoCopy(t, accept, regd, ref, "dir:"+t.TempDir()); err != nil {
		t.Errorf("insecureAcceptAnything refused: %v", err)
	}
}

// TestSignedByLookaside signs with skopeo and gpg into a file:// lookaside
// and checks that a signedBy policy accepts the signer's key and refuses
// another key: GPGHome, WriteRegistriesD and the lookaside path together.
func TestSignedByLookaside(t *testing.T) {
	interop.Require(t, "skopeo", "docker-registry", "gpg")
	reg := interop.StartRegistry(t)
	gnupg := interop.GPGHome(t, testkeys.Secret("alice"))
	dir, digest := writeLayout(t, "3.0")
	scope := reg.Addr + "/stagex"
	ref := "docker://" + scope + "/core-test:3.0"
	sigs := t.TempDir()
	regd := interop.WriteRegistriesD(t, scope, sigs)
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})

	interop.Run(t, []string{"GNUPGHOME=" + gnupg}, "skopeo",
		"--policy", accept, "--registries.d", regd,
		"copy", "--dest-tls-verify=false", "--sign-by", testkeys.Fingerprint("alice"),
		"oci:"+dir+":3.0", ref)
	sig := filepath.Join(sigs, "stagex", "core-test@"+strings.Replace(digest.String(), ":", "=", 1), "signature-1")
	if _, err := os.Stat(sig); err != nil {
		t.Fatalf("signature not at the lookaside path: %v", err)
	}

	keyring := func(name string) string {
		path := filepath.Join(t.TempDir(), name+".asc")
		if err := os.WriteFile(path, testkeys.Public(name), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	alice := interop.WritePolicy(t, interop.DockerPolicy(scope, interop.SignedBy(keyring("alice"), nil)))
	if err := interop.SkopeoCopy(t, alice, regd, ref, "dir:"+t.TempDir()); err != nil {
		t.Errorf("signedBy alice refused alice's signature: %v", err)
	}
	bob := interop.WritePolicy(t, interop.DockerPolicy(scope, interop.SignedBy(keyring("bob"), nil)))
	err := interop.SkopeoCopy(t, bob, regd, ref, "dir:"+t.TempDir())
	if err == nil {
		t.Fatal("signedBy bob accepted alice's signature")
	}
	if !strings.Contains(err.Error(), "Invalid GPG signature") {
		t.Errorf("refused for another reason than the signature: %v", err)
	}
}

// recorder is a testing.TB whose Skip and Fatalf only record, so that
// Require's choice can be checked without ending the test.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }

func TestRequireSkipsOrFails(t *testing.T) {
	const missing = "tally-no-such-tool"

	t.Setenv("CI", "")
	r := &recorder{TB: t}
	interop.Require(r, "sh", missing)
	if r.fatal != "" || !strings.Contains(r.skipped, "INTEROP SKIPPED: "+missing+" not installed") {
		t.Errorf("without CI: skipped %q, fatal %q; want a loud skip naming only %s", r.skipped, r.fatal, missing)
	}

	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	interop.Require(r, missing)
	if r.skipped != "" || !strings.Contains(r.fatal, missing) {
		t.Errorf("with CI: skipped %q, fatal %q; want a failure naming %s", r.skipped, r.fatal, missing)
	}

	r = &recorder{TB: t}
	interop.Require(r, "sh")
	if r.skipped != "" || r.fatal != "" {
		t.Errorf("present tool: skipped %q, fatal %q", r.skipped, r.fatal)
	}
}

func TestGitIsolatedAndDeterministic(t *testing.T) {
	interop.Require(t, "git")
	commit := func() string {
		dir := t.TempDir()
		interop.Git(t, dir, nil, "init", "-q")
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		interop.Git(t, dir, nil, "add", "f")
		interop.Git(t, dir, nil, "commit", "-q", "-m", "one")
		if b := strings.TrimSpace(interop.Git(t, dir, nil, "branch", "--show-current")); b != "main" {
			t.Errorf("default branch %q, want main", b)
		}
		return strings.TrimSpace(interop.Git(t, dir, nil, "rev-parse", "HEAD"))
	}
	if a, b := commit(), commit(); a != b {
		t.Errorf("same commit in two repositories has hashes %s and %s", a, b)
	}

	// --global writes to the isolated HOME, never to the caller's.
	interop.Git(t, "", nil, "config", "--global", "user.signingkey", "TEST")
	if _, err := os.Stat(filepath.Join(interop.Home(t), ".gitconfig")); err != nil {
		t.Errorf("git config --global did not write into the isolated HOME: %v", err)
	}

	_, err := interop.GitErr(t, t.TempDir(), nil, "rev-parse", "HEAD")
	if err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("GitErr outside a repository: %v; want git's own message", err)
	}
}

func TestGPGHomeImportsTrustsAndCleansUp(t *testing.T) {
	interop.Require(t, "gpg")
	var home string
	t.Run("home", func(t *testing.T) {
		home = interop.GPGHome(t, testkeys.Secret("alice"), testkeys.Public("bob"))
		if len(home) > 40 {
			t.Errorf("GNUPGHOME %q is long: agent sockets need short paths", home)
		}
		env := []string{"GNUPGHOME=" + home}
		trust := interop.Run(t, env, "gpg", "--batch", "--export-ownertrust")
		for _, name := range []string{"alice", "bob"} {
			if !strings.Contains(trust, testkeys.Fingerprint(name)+":6:") {
				t.Errorf("%s not ultimately trusted:\n%s", name, trust)
			}
		}
		secret := interop.Run(t, env, "gpg", "--batch", "--with-colons", "--list-secret-keys")
		if !strings.Contains(secret, testkeys.Fingerprint("alice")) || strings.Contains(secret, testkeys.Fingerprint("bob")) {
			t.Errorf("secret keys wrong:\n%s", secret)
		}
		// Signing starts the agent, which cleanup must stop.
		cmd := interop.Command(t, "", env, "gpg", "--batch", "--local-user", testkeys.Fingerprint("alice"), "--detach-sign")
		cmd.Stdin = strings.NewReader("payload")
		if out, err := cmd.Output(); err != nil || len(out) == 0 {
			t.Errorf("signing with alice: %v", err)
		}
	})
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("GNUPGHOME %s still there after cleanup: %v", home, err)
	}
}
