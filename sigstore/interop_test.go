package sigstore

// Interop tests: the real gpg, git and skopeo accept what tally signs, and
// tally accepts what they sign. They skip loudly when a tool is missing and
// fail instead when CI is set (internal/interop.Require).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/testkeys"
)

// gpgSigners are the fixture keys gpg can use without a passphrase prompt.
var gpgSigners = []string{"alice", "bob", "carol", "dave"}

// manifestFixture writes a manifest-like file and returns its path and a
// payload for its digest.
func manifestFixture(t *testing.T, dir string) (string, Payload) {
	t.Helper()
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + testHex + `","size":2},"layers":[]}`)
	path := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(path, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(manifest)
	return path, Payload{Reference: "stagex/core-gcc:14.2.0", Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInteropGPGVerifiesSignMessage(t *testing.T) {
	t.Parallel()
	interop.Require(t, "gpg")
	home := interop.GPGHome(t, publicKeysList(signerNames...)...)
	env := []string{"GNUPGHOME=" + home}
	for _, name := range signerNames {
		t.Run(name, func(t *testing.T) {
			blob := writeTemp(t, "signature-1", mustSign(t, name))
			out, err := interop.RunErr(t, "", env, "gpg", "--batch", "--status-fd", "1", "--verify", blob)
			if err != nil {
				t.Fatalf("gpg --verify refused SignMessage output: %v", err)
			}
			if !validSigFrom(out, testkeys.Fingerprint(name)) {
				t.Errorf("gpg status has no VALIDSIG with primary %s:\n%s", testkeys.Fingerprint(name), out)
			}
			payload, err := interop.RunErr(t, "", env, "gpg", "--batch", "--decrypt", blob)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := testPayload.Marshal()
			if payload != string(want) {
				t.Errorf("gpg extracted %q, want %q", payload, want)
			}
		})
	}
}

// validSigFrom reports whether gpg --status-fd output has a VALIDSIG with
// hash algorithm SHA-256 (8) whose primary-key fingerprint is primary.
// VALIDSIG fields: fpr date timestamp expire version reserved pubkey-algo
// hash-algo sig-class primary-fpr.
func validSigFrom(status, primary string) bool {
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) == 12 && f[0] == "[GNUPG:]" && f[1] == "VALIDSIG" && f[9] == "8" && f[11] == primary {
			return true
		}
	}
	return false
}

func TestInteropGitVerifiesSignDetached(t *testing.T) {
	t.Parallel()
	interop.Require(t, "gpg", "git")
	home := interop.GPGHome(t, publicKeysList(signerNames...)...)
	env := []string{"GNUPGHOME=" + home}
	repo := t.TempDir()
	interop.Git(t, repo, env, "init", "-q")
	for _, name := range signerNames {
		t.Run(name, func(t *testing.T) {
			// Detached signature files, as gpg --verify sig data reads them.
			data := []byte("tally signs " + name + "\n")
			sig, err := fixtureSigner(t, name).SignDetached(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := interop.RunErr(t, "", env, "gpg", "--batch", "--status-fd", "1", "--verify", writeTemp(t, "sig.asc", sig), writeTemp(t, "data", data))
			if err != nil || !validSigFrom(out, testkeys.Fingerprint(name)) {
				t.Fatalf("gpg --verify sig data: %v\n%s", err, out)
			}

			// A signed commit object, as gitstore writes them.
			commit := fmt.Sprintf("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor %s <%s> 1735689600 +0000\ncommitter %s <%s> 1735689600 +0000\n\nsigned by %s\n",
				interop.UserName, interop.UserEmail, interop.UserName, interop.UserEmail, name)
			sig, err = fixtureSigner(t, name).SignDetached([]byte(commit))
			if err != nil {
				t.Fatal(err)
			}
			header, body, _ := strings.Cut(commit, "\n\n")
			signed := header + "\ngpgsig " + strings.ReplaceAll(strings.TrimRight(string(sig), "\n"), "\n", "\n ") + "\n\n" + body
			cmd := interop.Command(t, repo, env, "git", "hash-object", "-t", "commit", "-w", "--stdin")
			cmd.Stdin = strings.NewReader(signed)
			id, err := cmd.Output()
			if err != nil {
				t.Fatalf("writing commit: %v", err)
			}
			if _, err := interop.GitErr(t, repo, env, "verify-commit", strings.TrimSpace(string(id))); err != nil {
				t.Fatalf("git verify-commit refused the commit: %v", err)
			}
		})
	}
}

func TestInteropSkopeoStandaloneVerify(t *testing.T) {
	t.Parallel()
	interop.Require(t, "gpg", "skopeo")
	version := interop.Run(t, nil, "skopeo", "--version")
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		t.Run(name, func(t *testing.T) {
			home := interop.GPGHome(t, testkeys.Public(name))
			env := []string{"GNUPGHOME=" + home}
			manifest, payload := manifestFixture(t, t.TempDir())
			blob := writeTemp(t, "signature-1", mustSign(t, name, payload))
			out, err := interop.RunErr(t, "", env, "skopeo", "standalone-verify", manifest, "docker.io/stagex/core-gcc:14.2.0", testkeys.Fingerprint(name), blob)
			if name == "dave" {
				// Subkey signatures: what CheckKey warns about.
				if err == nil && strings.Contains(version, "1.9.3") {
					t.Fatalf("skopeo 1.9.3 accepted a subkey signature; formats.md section 3 and CheckKey's warning are out of date:\n%s", out)
				}
				t.Logf("%s on a subkey signature: %v", strings.TrimSpace(version), err)
				return
			}
			if err != nil {
				t.Fatalf("skopeo standalone-verify refused SignMessage output: %v", err)
			}
			// The wrong digest is refused: the manifest decides.
			other, _ := manifestFixture(t, t.TempDir())
			if err := os.WriteFile(other, []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := interop.RunErr(t, "", env, "skopeo", "standalone-verify", other, "docker.io/stagex/core-gcc:14.2.0", testkeys.Fingerprint(name), blob); err == nil {
				t.Error("skopeo accepted the signature for another manifest")
			}
		})
	}
}

func TestInteropVerifyAcceptsGPGAndSkopeo(t *testing.T) {
	t.Parallel()
	interop.Require(t, "gpg", "skopeo")
	keys := mustKeyring(t, signerNames...)
	for _, name := range gpgSigners {
		t.Run(name, func(t *testing.T) {
			home := interop.GPGHome(t, testkeys.Secret(name))
			env := []string{"GNUPGHOME=" + home}
			manifest, payload := manifestFixture(t, t.TempDir())
			data, _ := payload.Marshal()

			cmd := interop.Command(t, "", env, "gpg", "--batch", "--local-user", testkeys.Fingerprint(name), "--sign")
			cmd.Stdin = bytes.NewReader(data)
			gpgBlob, err := cmd.Output()
			if err != nil {
				t.Fatalf("gpg --sign: %v", err)
			}
			if gpgBlob[0]&0xFC != 0xA0 && gpgBlob[0] != 0xC8 {
				t.Errorf("gpg --sign output starts with %#x, not a compressed packet", gpgBlob[0])
			}
			sig, err := Verify(gpgBlob, keys)
			if err != nil {
				t.Fatalf("Verify(gpg --sign): %v", err)
			}
			if sig.Signer != testkeys.Fingerprint(name) || sig.Payload != payload {
				t.Errorf("Verify(gpg --sign) = %+v", sig)
			}

			out := filepath.Join(t.TempDir(), "signature-1")
			if _, err := interop.RunErr(t, "", env, "skopeo", "standalone-sign", "-o", out, manifest, "docker.io/stagex/core-gcc:14.2.0", testkeys.Fingerprint(name)); err != nil {
				t.Fatalf("skopeo standalone-sign: %v", err)
			}
			blob, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			v := Judge(Location{Repository: "stagex/core-gcc", Digest: payload.Digest, Number: 1}, "stagex/core-gcc", blob, keys)
			if !v.OK() || v.Signature.Signer != testkeys.Fingerprint(name) || v.Signature.Payload.Creator == "" || v.Signature.Payload.Timestamp == 0 {
				t.Errorf("Judge(skopeo standalone-sign) = %+v", v)
			}
		})
	}
}

func TestInteropGPGSigner(t *testing.T) {
	t.Parallel()
	interop.Require(t, "gpg")
	home := interop.GPGHome(t, testkeys.Secret("alice"), testkeys.Secret("bob"), testkeys.Secret("dave"))
	keys := mustKeyring(t, "alice", "bob", "dave")
	for _, name := range []string{"alice", "bob", "dave"} {
		t.Run(name, func(t *testing.T) {
			s, err := NewGPGSigner(GPGOptions{Home: home, LocalUser: testkeys.Fingerprint(name)})
			if err != nil {
				t.Fatal(err)
			}
			if s.Fingerprint() != testkeys.Fingerprint(name) || s.SubkeyOnly() != (name == "dave") {
				t.Errorf("Fingerprint() = %s, SubkeyOnly() = %v", s.Fingerprint(), s.SubkeyOnly())
			}
			data, _ := testPayload.Marshal()
			blob, err := s.SignMessage(data)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := Verify(blob, keys)
			if err != nil || sig.Signer != testkeys.Fingerprint(name) || sig.Subkey != (name == "dave") {
				t.Fatalf("Verify(GPGSigner) = %+v, %v", sig, err)
			}
			detached, err := s.SignDetached(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := interop.RunErr(t, "", []string{"GNUPGHOME=" + home}, "gpg", "--batch", "--status-fd", "1", "--verify", writeTemp(t, "d.asc", detached), writeTemp(t, "d", data))
			if err != nil || !validSigFrom(out, testkeys.Fingerprint(name)) {
				t.Fatalf("gpg --verify of SignDetached: %v\n%s", err, out)
			}
		})
	}

	t.Run("parallel use is serialised", func(t *testing.T) {
		s, err := NewGPGSigner(GPGOptions{Home: home, LocalUser: testkeys.Fingerprint("bob")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := testPayload.Marshal()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				blob, err := s.SignMessage(data)
				if err == nil {
					_, err = Verify(blob, keys)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	for name, tc := range map[string]struct {
		opts GPGOptions
		want string
	}{
		"ambiguous":       {GPGOptions{Home: home, LocalUser: "TEST KEY"}, "matches 3 keys"},
		"no local user":   {GPGOptions{Home: home}, "matches 3 keys"},
		"unknown key":     {GPGOptions{Home: home, LocalUser: testkeys.Fingerprint("carol")}, "gpg: error reading key"},
		"missing program": {GPGOptions{Program: "/nonexistent/gpg", Home: home, LocalUser: "alice"}, "/nonexistent/gpg"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NewGPGSigner(tc.opts)
			if err == nil {
				t.Fatalf("NewGPGSigner = %+v", s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func publicKeysList(names ...string) [][]byte {
	var keys [][]byte
	for _, n := range names {
		keys = append(keys, testkeys.Public(n))
	}
	return keys
}

// TestInteropPoisoning checks Kind.Poisons against skopeo: a signature-1 of
// a poisoning kind makes skopeo reject the image although signature-2 is a
// good signature; any other problem in signature-1 does not. The dir:
// transport reads signature-N files like a file:// lookaside.
func TestInteropPoisoning(t *testing.T) {
	t.Parallel()
	interop.Require(t, "skopeo")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	config := []byte("{}")
	configSum := sha256.Sum256(config)
	configHex := hex.EncodeToString(configSum[:])
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + configHex + `","size":2},"layers":[]}`)
	manifestSum := sha256.Sum256(manifest)
	payload := Payload{Reference: "docker.io/stagex/core-gcc:14.2.0", Digest: "sha256:" + hex.EncodeToString(manifestSum[:])}
	keyPath := filepath.Join(dir, "alice.asc")
	policy := filepath.Join(dir, "policy.json")
	for path, data := range map[string][]byte{
		filepath.Join(src, configHex):       config,
		filepath.Join(src, "manifest.json"): manifest,
		filepath.Join(src, "version"):       []byte("Directory Transport Version: 1.1\n"),
		keyPath:                             testkeys.Public("alice"),
		policy: []byte(`{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"` + keyPath +
			`","signedIdentity":{"type":"exactReference","dockerReference":"docker.io/stagex/core-gcc:14.2.0"}}]}`),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := mustSign(t, "alice", payload)
	body, _ := payload.Marshal()
	tampered := bytes.Replace(good, body[len(body)-20:], bytes.Repeat([]byte("x"), 20), 1)
	keys := mustKeyring(t, "alice")

	for _, first := range []struct {
		name string
		blob []byte
	}{
		{"good", good},
		{"empty", nil},
		{"armored", armorBlob(t, good)},
		{"text", []byte("not a signature")},
		{"truncated", good[:len(good)/2]},
		{"two signatures", append(slicesClone(good), good[len(good)-120:]...)},
		{"tampered", tampered},
		{"unknown key", mustSign(t, "bob", payload)},
	} {
		t.Run(first.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(src, "signature-1"), first.blob, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "signature-2"), good, 0o644); err != nil {
				t.Fatal(err)
			}
			_, verr := Verify(first.blob, keys)
			var kind Kind
			if p := (*Problem)(nil); errors.As(verr, &p) {
				kind = p.Kind
			}
			_, err := interop.RunErr(t, "", nil, "skopeo", "--policy", policy, "copy", "dir:"+src, "dir:"+filepath.Join(t.TempDir(), "dst"))
			if rejected := err != nil; rejected != kind.Poisons() {
				t.Errorf("signature-1 of kind %q: skopeo rejected the image: %v (Poisons() = %v)\n%v", kind, rejected, kind.Poisons(), err)
			}
		})
	}
}
