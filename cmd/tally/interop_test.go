package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// These tests check what tally init and tally sign write with the real
// tools that consume it: gpg, skopeo (standalone-verify, and copy from a
// real docker-registry under a policy.json reading a file:// lookaside) and
// git verify-commit. They run the command in-process, as the scripts do.

// tallyRun runs the tally command line in-process and returns its output
// and exit code.
func tallyRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"tally"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustTally runs tally and fails the test unless it exits 0.
func mustTally(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := tallyRun(t, args...)
	if code != 0 {
		t.Fatalf("tally %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// keyFiles writes every fixture key as <dir>/<name>.pub.asc and .sec.asc.
func keyFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range testkeys.Names {
		if err := os.WriteFile(filepath.Join(dir, n+".pub.asc"), testkeys.Public(n), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n+".sec.asc"), testkeys.Secret(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// signedRepo is a signatures repository that alice and bob both signed,
// with the build output they signed.
type signedRepo struct {
	keys, repo, out string
	digests         map[string][]string // image name -> per-platform digests (sample order)
	signed          map[string][]release.SignedImage
}

// newSignedRepo initialises a repository for alice and bob (2 of 2, the
// init commit signed by alice), writes the sample images and has alice,
// then bob, sign all of them.
func newSignedRepo(t *testing.T, specs ...sample.Spec) *signedRepo {
	t.Helper()
	s := &signedRepo{keys: keyFiles(t), signed: map[string][]release.SignedImage{}}
	dir := t.TempDir()
	s.repo, s.out = filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	mustTally(t, "init", "--repo", s.repo, "--threshold", "2",
		"--key-file", filepath.Join(s.keys, "alice.pub.asc"), "--key-file", filepath.Join(s.keys, "bob.pub.asc"),
		"--key", filepath.Join(s.keys, "alice.sec.asc"))
	var err error
	if s.digests, err = sample.Write(s.out, specs...); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "bob"} {
		out := mustTally(t, "sign", "--repo", s.repo, "--release", "2026.11.0", "--out", s.out,
			"--key", filepath.Join(s.keys, who+".sec.asc"), "--json")
		var res release.SignResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("sign --json output: %v\n%s", err, out)
		}
		if res.Signer != testkeys.Fingerprint(who) {
			t.Fatalf("signed by %s, want %s's key", res.Signer, who)
		}
		s.signed[who] = res.Signed
	}
	return s
}

// file returns the path in the checkout of alice's or bob's signature of digest.
func (s *signedRepo) file(t *testing.T, who, digest string) string {
	t.Helper()
	for _, si := range s.signed[who] {
		if si.Digest == digest {
			return filepath.Join(s.repo, filepath.FromSlash(si.Path))
		}
	}
	t.Fatalf("%s signed no %s", who, digest)
	return ""
}

// interopGPGEnv is a GNUPGHOME holding the maintainers' public keys.
func interopGPGEnv(t *testing.T, names ...string) []string {
	t.Helper()
	var keys [][]byte
	for _, n := range names {
		keys = append(keys, testkeys.Public(n))
	}
	return []string{"GNUPGHOME=" + interop.GPGHome(t, keys...)}
}

// gpgValidSigner returns the primary fingerprint in gpg's VALIDSIG status line.
func gpgValidSigner(status string) string {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "[GNUPG:]" && f[1] == "VALIDSIG" {
			return f[len(f)-1]
		}
	}
	return ""
}

func TestInteropSignaturesVerifyWithGPGAndSkopeo(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "git")
	s := newSignedRepo(t,
		sample.Spec{Name: "core-hello", Tag: "1.0"},
		sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}},
		sample.Spec{Name: "core-flat", Tag: "3.1", Flat: true, Platforms: []string{"linux/amd64", "linux/riscv64"}},
	)
	env := interopGPGEnv(t, "alice", "bob")
	tags := map[string]string{"core-hello": "1.0", "core-multi": "2.0", "core-flat": "3.1"}

	checked := 0
	for img, digests := range s.digests {
		for _, digest := range digests {
			hex := strings.TrimPrefix(digest, "sha256:")
			manifest := filepath.Join(s.out, img, "blobs", "sha256", hex)
			ref := "stagex/" + img + ":" + tags[img]
			for _, who := range []string{"alice", "bob"} {
				fpr := testkeys.Fingerprint(who)
				sig := s.file(t, who, digest)
				status, err := interop.RunErr(t, "", env, "gpg", "--batch", "--status-fd", "1", "--verify", sig)
				if err != nil {
					t.Errorf("gpg --verify %s (%s): %v", sig, who, err)
				} else if got := gpgValidSigner(status); got != fpr {
					t.Errorf("gpg --verify %s: VALIDSIG by %q, want %s\n%s", sig, got, fpr, status)
				}
				out, err := interop.RunErr(t, "", env, "skopeo", "standalone-verify", manifest, ref, fpr, sig)
				if err != nil {
					t.Errorf("skopeo standalone-verify %s %s (%s): %v", img, digest, who, err)
				} else if !strings.Contains(out, digest) {
					t.Errorf("skopeo standalone-verify said %q, want the digest %s", out, digest)
				}
				checked++

				// The check is not vacuous: the other maintainer's key, or
				// another image's identity, is refused.
				other := testkeys.Fingerprint(map[string]string{"alice": "bob", "bob": "alice"}[who])
				if _, err := interop.RunErr(t, "", env, "skopeo", "standalone-verify", manifest, ref, other, sig); err == nil {
					t.Errorf("skopeo standalone-verify accepted %s's signature as %s's", who, other)
				}
				if _, err := interop.RunErr(t, "", env, "skopeo", "standalone-verify", manifest, "stagex/core-other:"+tags[img], fpr, sig); err == nil {
					t.Errorf("skopeo standalone-verify accepted %s for another identity", sig)
				}
			}
		}
	}
	if checked != 2*5 {
		t.Errorf("checked %d signature files, want 10 (5 platform manifests, 2 maintainers)", checked)
	}
}

func TestInteropGitVerifiesCommits(t *testing.T) {
	interop.Require(t, "gpg", "git")
	s := newSignedRepo(t, sample.Spec{Name: "core-hello", Tag: "1.0"})
	env := interopGPGEnv(t, "alice", "bob")

	log := interop.Git(t, s.repo, env, "log", "--format=%H %G? %GF %s")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 commits (init, alice's sign, bob's sign), got:\n%s", log)
	}
	want := []struct{ who, subject string }{
		{"bob", "sign 2026.11.0: 1 new signature(s) by Bob Builder"},
		{"alice", "sign 2026.11.0: 1 new signature(s) by Alice Builder"},
		{"alice", "init: trust policy for stagex, 2 of 2 maintainers"},
	}
	for i, line := range lines {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			t.Fatalf("log line %q", line)
		}
		if _, err := interop.GitErr(t, s.repo, env, "verify-commit", f[0]); err != nil {
			t.Errorf("git verify-commit %s (%s): %v", f[0], f[3], err)
		}
		if f[1] != "G" || f[2] != testkeys.Fingerprint(want[i].who) {
			t.Errorf("commit %q: signature status %s by %s, want G by %s's key", f[3], f[1], f[2], want[i].who)
		}
		if !strings.HasPrefix(f[3], want[i].subject) {
			t.Errorf("commit %d subject %q, want %q", i, f[3], want[i].subject)
		}
	}

	// Without the maintainers' keys git cannot vouch for the commits.
	if _, err := interop.GitErr(t, s.repo, interopGPGEnv(t, "carol"), "verify-commit", "HEAD"); err == nil {
		t.Error("git verify-commit accepted HEAD without the signer's public key")
	}
	// The checkout is exactly the commit: git sees nothing to commit.
	if st := interop.Git(t, s.repo, nil, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after init and two signs:\n%s", st)
	}
	interop.Git(t, s.repo, nil, "fsck", "--strict", "--no-progress")
}

// skopeoConsumer is what a user of the images configures: a policy.json that
// demands signatures by every named maintainer for the registry's stagex
// scope (remapped to the docker.io/stagex identity the maintainers sign),
// and a registries.d pointing that scope at the signatures checkout.
type skopeoConsumer struct {
	policy, regd string
}

func newSkopeoConsumer(t *testing.T, s *signedRepo, reg *interop.Registry, maintainers ...string) skopeoConsumer {
	t.Helper()
	scope := reg.Addr + "/stagex"
	remap := &interop.Identity{Type: "remapIdentity", Prefix: scope, SignedPrefix: "docker.io/stagex"}
	var reqs []interop.Requirement
	for _, m := range maintainers {
		reqs = append(reqs, interop.SignedBy(filepath.Join(s.keys, m+".pub.asc"), remap))
	}
	return skopeoConsumer{
		policy: interop.WritePolicy(t, interop.DockerPolicy(scope, reqs...)),
		regd:   interop.WriteRegistriesD(t, scope, s.repo),
	}
}

// pull copies ref from the registry into a new dir: layout with stock
// skopeo under the consumer's policy; extra goes before "copy"
// (--override-arch).
func (c skopeoConsumer) pull(t *testing.T, ref string, extra ...string) error {
	t.Helper()
	args := append([]string{"--policy", c.policy, "--registries.d", c.regd}, extra...)
	args = append(args, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+t.TempDir())
	_, err := interop.RunErr(t, "", nil, "skopeo", args...)
	return err
}

// skopeoPush copies an image from its OCI layout to the registry with stock skopeo
// (accepting anything: the registry side is not under test) and returns the
// digest the registry serves for the tag.
func skopeoPush(t *testing.T, reg *interop.Registry, out, img, tag string, all bool) string {
	t.Helper()
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	ref := reg.Addr + "/stagex/" + img + ":" + tag
	args := []string{"--policy", accept, "copy", "--dest-tls-verify=false"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, "oci:"+filepath.Join(out, img)+":"+tag, "docker://"+ref)
	interop.Run(t, nil, "skopeo", args...)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("reading %s back: %v", ref, err)
	}
	return desc.Digest.String()
}

func TestInteropRegistryPullNeedsBothMaintainers(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "docker-registry", "git")
	s := newSignedRepo(t, sample.Spec{Name: "core-hello", Tag: "1.0"})
	reg := interop.StartRegistry(t)

	// skopeo pushes the layout's nested index by picking this machine's
	// platform instance and copying its manifest unchanged: the tag then
	// serves exactly the digest tally signed.
	digest := s.digests["core-hello"][0]
	if got := skopeoPush(t, reg, s.out, "core-hello", "1.0", false); got != digest {
		t.Fatalf("skopeo pushed core-hello:1.0 as %s, tally signed %s", got, digest)
	}
	ref := reg.Addr + "/stagex/core-hello:1.0"

	both := newSkopeoConsumer(t, s, reg, "alice", "bob")
	if err := both.pull(t, ref); err != nil {
		t.Fatalf("skopeo refused an image both maintainers signed: %v", err)
	}
	// Not vacuous: a policy that also demands carol refuses it.
	if err := newSkopeoConsumer(t, s, reg, "alice", "carol").pull(t, ref); err == nil {
		t.Error("skopeo accepted the image under a policy demanding carol, who never signed")
	} else {
		t.Logf("demanding carol too: refused as it should be: %v", err)
	}

	// Take bob's signature away from the lookaside: refused.
	if err := os.Remove(s.file(t, "bob", digest)); err != nil {
		t.Fatal(err)
	}
	err := both.pull(t, ref)
	if err == nil {
		t.Fatal("skopeo accepted the image with only alice's signature under a policy demanding alice and bob")
	}
	if !strings.Contains(err.Error(), "Source image rejected") {
		t.Errorf("refused for another reason than the policy: %v", err)
	}
	t.Logf("without bob's signature: refused as it should be: %v", err)
	// Alice's signature alone still satisfies a policy demanding only her.
	if err := newSkopeoConsumer(t, s, reg, "alice").pull(t, ref); err != nil {
		t.Errorf("skopeo refused alice's signature alone under a policy demanding alice: %v", err)
	}
}

func TestInteropRegistryMultiPlatform(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "docker-registry", "git")
	platforms := []string{"linux/amd64", "linux/arm64"}
	s := newSignedRepo(t, sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: platforms})
	reg := interop.StartRegistry(t)

	// --all pushes the image index and every instance, each manifest
	// unchanged; the tag serves the index, which nobody signs.
	index := skopeoPush(t, reg, s.out, "core-multi", "2.0", true)
	if slices.Contains(s.digests["core-multi"], index) {
		t.Fatalf("the tag serves %s, a platform manifest, want the index", index)
	}
	ref := reg.Addr + "/stagex/core-multi:2.0"
	c := newSkopeoConsumer(t, s, reg, "alice", "bob")
	for i, p := range platforms {
		arch := strings.TrimPrefix(p, "linux/")
		// The instance skopeo picks is one of the digests tally signed.
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(r)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.Architecture == arch && m.Digest.String() == s.digests["core-multi"][i] {
				found = true
			}
		}
		if !found {
			t.Fatalf("the pushed index has no %s instance with the signed digest %s", p, s.digests["core-multi"][i])
		}
		if err := c.pull(t, ref, "--override-arch", arch); err != nil {
			t.Errorf("skopeo refused the %s instance both maintainers signed: %v", p, err)
		}
	}

	// Without bob's signature of the arm64 manifest only arm64 is refused.
	if err := os.Remove(s.file(t, "bob", s.digests["core-multi"][1])); err != nil {
		t.Fatal(err)
	}
	if err := c.pull(t, ref, "--override-arch", "arm64"); err == nil {
		t.Error("skopeo accepted the arm64 instance with only alice's signature")
	} else {
		t.Logf("arm64 without bob's signature: refused as it should be: %v", err)
	}
	if err := c.pull(t, ref, "--override-arch", "amd64"); err != nil {
		t.Errorf("skopeo refused the amd64 instance, still signed by both: %v", err)
	}
}

// interopSignerEnv points the process at a new GNUPGHOME holding alice's secret
// key and at an empty HOME (no git configuration), as a maintainer's shell
// would: --gpg runs gpg from the environment.
func interopSignerEnv(t *testing.T, secret ...string) (home string) {
	t.Helper()
	var keys [][]byte
	for _, n := range secret {
		keys = append(keys, testkeys.Secret(n))
	}
	t.Setenv("GNUPGHOME", interop.GPGHome(t, keys...))
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return home
}

// judgeInteropHead judges every signature file at the repository's HEAD with
// tally's own judgement (sigstore.Judge against the repository's keyring and
// policy) and returns the signer of each; it fails the test for any file
// that is not a good signature.
func judgeInteropHead(t *testing.T, dir string) map[string]string {
	t.Helper()
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]string{}
	err = st.Snap.Walk(st.Policy.Namespace, func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		loc, err := sigstore.ParseLocation(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		blob, err := st.Snap.Blob(e.Hash)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(loc.Repository, st.Policy.Namespace+"/")
		v := sigstore.Judge(loc, st.Policy.Repository(name), blob, st.Keys)
		if !v.OK() {
			t.Errorf("%s: %s: %s", p, v.Problem, v.Message)
		}
		signers[p] = v.Signature.Signer
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return signers
}

func TestInteropSignWithGPG(t *testing.T) {
	interop.Require(t, "gpg", "gpg-agent", "git")
	interopSignerEnv(t, "alice", "mallory")
	keys := keyFiles(t)
	dir := t.TempDir()
	repo, out := filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	alice := testkeys.Fingerprint("alice")

	// gpg signs the init commit too.
	mustTally(t, "init", "--repo", repo, "--threshold", "1",
		"--key-file", filepath.Join(keys, "alice.pub.asc"), "--key-file", filepath.Join(keys, "bob.pub.asc"),
		"--gpg", "--local-user", alice)
	if _, err := sample.Write(out, sample.Spec{Name: "core-hello", Tag: "1.0"},
		sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}}); err != nil {
		t.Fatal(err)
	}
	stdout := mustTally(t, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--gpg", "--local-user", alice, "--json")
	var res release.SignResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Signer != alice || len(res.Signed) != 3 || res.Commit == "" {
		t.Fatalf("sign --gpg: signer %s, %d new signature(s), commit %q; want alice, 3, a commit", res.Signer, len(res.Signed), res.Commit)
	}

	// tally's own judgement accepts every file, all by alice.
	signers := judgeInteropHead(t, repo)
	if len(signers) != 3 {
		t.Errorf("tally judged %d signature files, want 3", len(signers))
	}
	for p, fpr := range signers {
		if fpr != alice {
			t.Errorf("%s signed by %s, want alice", p, fpr)
		}
	}
	// gpg verifies the files (gpg writes a compressed signed message) and
	// git the commits.
	env := interopGPGEnv(t, "alice")
	for _, si := range res.Signed {
		status := interop.Run(t, env, "gpg", "--batch", "--status-fd", "1", "--verify", filepath.Join(repo, si.Path))
		if got := gpgValidSigner(status); got != alice {
			t.Errorf("gpg --verify %s: VALIDSIG by %q, want alice", si.Path, got)
		}
	}
	for _, rev := range []string{"HEAD", "HEAD~1"} {
		if _, err := interop.GitErr(t, repo, env, "verify-commit", rev); err != nil {
			t.Errorf("git verify-commit %s: %v", rev, err)
		}
	}

	// A rerun adds nothing; an outsider's gpg key is refused, nothing moves.
	if out := mustTally(t, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--gpg", "-u", alice); !strings.Contains(out, "nothing new to commit") {
		t.Errorf("second sign --gpg:\n%s", out)
	}
	head := interop.Git(t, repo, nil, "rev-parse", "HEAD")
	_, errOut, code := tallyRun(t, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--gpg", "-u", testkeys.Fingerprint("mallory"))
	if code != exitData || !strings.Contains(errOut, "not a maintainer key") {
		t.Errorf("sign --gpg with an outsider's key: exit %d, want %d\n%s", code, exitData, errOut)
	}
	// A key gpg does not hold.
	_, errOut, code = tallyRun(t, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--gpg", "-u", testkeys.Fingerprint("bob"))
	if code != exitData || !strings.Contains(errOut, "tally: error: finding secret key") {
		t.Errorf("sign --gpg with a key gpg lacks: exit %d, want %d\n%s", code, exitData, errOut)
	}
	if got := interop.Git(t, repo, nil, "rev-parse", "HEAD"); got != head {
		t.Errorf("HEAD moved from %s to %s on refusals", head, got)
	}
}

func TestInteropSignWithGPGDefaultsToGitSigningKey(t *testing.T) {
	interop.Require(t, "gpg", "gpg-agent", "git")
	home := interopSignerEnv(t, "bob")
	keys := keyFiles(t)
	dir := t.TempDir()
	repo, out := filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	mustTally(t, "init", "--repo", repo, "--threshold", "1", "--key-file", filepath.Join(keys, "bob.pub.asc"))
	if _, err := sample.Write(out, sample.Spec{Name: "core-hello", Tag: "1.0"}); err != nil {
		t.Fatal(err)
	}

	// Without --local-user and without user.signingkey: a usage error saying what to do.
	_, errOut, code := tallyRun(t, "sign", "--repo", repo, "--release", "1.0", "--out", out, "--gpg")
	if code != exitUsage || !strings.Contains(errOut, "git config --global user.signingkey") {
		t.Errorf("sign --gpg with no key configured: exit %d, want %d\n%s", code, exitUsage, errOut)
	}

	// git config --global user.signingkey names the key, as for git commit -S.
	interop.Git(t, "", []string{"HOME=" + home}, "config", "--global", "user.signingkey", testkeys.Fingerprint("bob"))
	stdout := mustTally(t, "sign", "--repo", repo, "--release", "1.0", "--out", out, "--gpg")
	if !strings.Contains(stdout, "signer "+testkeys.Fingerprint("bob")) || !strings.Contains(stdout, "1 new signature") {
		t.Errorf("sign --gpg with user.signingkey:\n%s", stdout)
	}
	for p, fpr := range judgeInteropHead(t, repo) {
		if fpr != testkeys.Fingerprint("bob") {
			t.Errorf("%s signed by %s, want bob", p, fpr)
		}
	}
	if _, err := interop.GitErr(t, repo, interopGPGEnv(t, "bob"), "verify-commit", "HEAD"); err != nil {
		t.Errorf("git verify-commit HEAD: %v", err)
	}
}
