package release

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// snapshotFiles returns every file of the repository's HEAD tree.
func snapshotFiles(t *testing.T, repo *gitstore.Repo) map[string]string {
	t.Helper()
	_, tip, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := repo.Snapshot(tip)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	err = snap.Walk("", func(p string, e gitstore.Entry) error {
		if e.IsDir() {
			return nil
		}
		data, err := snap.Blob(e.Hash)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestInitAdoptsALookasideRepository(t *testing.T) {
	t.Parallel()
	// An existing StageX-style repository: signatures by alice and bob (two
	// directories, three files), a README, and a keyring holding alice's key.
	repo := gitstore.NewMemory(true)
	imgs := signSampleImages(t, sample.Spec{Name: "core-gcc", Tag: "14.2.0", Platforms: []string{"linux/amd64", "linux/arm64"}})
	dir := func(i int) string {
		return "stagex/core-gcc@sha256=" + strings.TrimPrefix(imgs[0].Manifests[i].Digest, "sha256:")
	}
	sig := func(who string, i int) []byte {
		return mustSignPayload(t, who, sigstore.Payload{Reference: "stagex/core-gcc:14.2.0", Digest: imgs[0].Manifests[i].Digest})
	}
	aliceKey, err := sigstore.ReadKeyring(testkeys.Public("alice"))
	if err != nil {
		t.Fatal(err)
	}
	var ring bytes.Buffer
	if err := aliceKey.Serialize(&ring); err != nil {
		t.Fatal(err)
	}
	signFirstCommit(t, repo,
		gitstore.Change{Path: dir(0) + "/signature-1", Data: sig("alice", 0)},
		gitstore.Change{Path: dir(0) + "/signature-2", Data: sig("bob", 0)},
		gitstore.Change{Path: dir(1) + "/signature-1", Data: sig("alice", 1)},
		gitstore.Change{Path: "README.md", Data: []byte("StageX signatures\n")},
		gitstore.Change{Path: "stagex-keyring.pgp", Data: ring.Bytes()},
	)
	before := snapshotFiles(t, repo)

	res, err := Init(context.Background(), repo, InitOptions{Namespace: "stagex", Keys: signFixtureKeys("bob"),
		Signer: signerFor(t, "bob"), Now: signClock})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if res.Adopted != 3 {
		t.Errorf("adopted %d files, want the 3 signature files", res.Adopted)
	}
	if res.Policy.Threshold != 2 || len(res.Keys) != 2 {
		t.Errorf("policy %+v with %d keys; want threshold 2 of alice and bob", res.Policy, len(res.Keys))
	}
	after := snapshotFiles(t, repo)
	for p, data := range before {
		if p == "stagex-keyring.pgp" {
			continue
		}
		if after[p] != data {
			t.Errorf("%s changed or vanished", p)
		}
	}
	var added []string
	for p := range after {
		if _, ok := before[p]; !ok {
			added = append(added, p)
		}
	}
	if diff := cmp.Diff([]string{"tally.toml"}, added); diff != "" {
		t.Errorf("added files (-want +got):\n%s", diff)
	}
	// The keyring gained bob and kept alice.
	keys, err := sigstore.ReadKeyring([]byte(after["stagex-keyring.pgp"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "bob"} {
		if _, ok := keys.Key(testkeys.Fingerprint(who)); !ok {
			t.Errorf("the keyring lacks %s", who)
		}
	}
	// The init commit is bob's and signed by him; the adopted signatures
	// count for the new policy.
	checkCommitSignature(t, repo, signHead(t, repo), "bob")
	for _, p := range []string{dir(0) + "/signature-1", dir(0) + "/signature-2", dir(1) + "/signature-1"} {
		judgeAt(t, repo, p)
	}
	// Signing now skips what alice signed before tally.
	sres := signMust(t, repo, signOpts(t, "alice", imgs))
	if len(sres.Signed) != 0 || len(sres.Skipped) != 2 {
		t.Errorf("alice after adoption: %d signed, %d skipped; want 0 and 2", len(sres.Signed), len(sres.Skipped))
	}
	sres = signMust(t, repo, signOpts(t, "bob", imgs))
	if diff := cmp.Diff([]string{dir(1) + "/signature-2"}, paths(sres.Signed)); diff != "" {
		t.Errorf("bob after adoption (-want +got):\n%s", diff)
	}
}

func TestInitRefusals(t *testing.T) {
	t.Parallel()
	weak := signNewKeyWith(t, "weak", packet.PubKeyAlgoRSA, 1024)
	expired := signNewKey(t, "old", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, repo *gitstore.Repo, o *InitOptions)
		want  error
		msg   string
	}{
		{name: "threshold above the keys", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Threshold = 3 },
			want: policy.ErrBadPolicy, msg: "threshold 3 is more than the 2 trusted key"},
		{name: "negative threshold", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Threshold = -1 },
			want: policy.ErrBadPolicy, msg: "at least 1"},
		{name: "no keys", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Keys = nil },
			want: policy.ErrBadPolicy, msg: "no maintainer keys"},
		{name: "the same key twice", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Keys = signFixtureKeys("alice", "bob", "alice")
		},
			want: ErrDuplicateKey, msg: "given twice"},
		{name: "a secret key", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Keys = append(o.Keys, PublicKey{Source: "carol.sec.asc", Data: testkeys.Secret("carol")})
		}, want: sigstore.ErrSecretKey},
		{name: "RSA-1024", setup: func(t *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Keys = append(o.Keys, PublicKey{Source: "weak.pub", Data: signPublicBytes(t, weak)})
		}, want: sigstore.ErrKeyUnsupported, msg: "weak.pub"},
		{name: "expired key", setup: func(t *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Keys = append(o.Keys, PublicKey{Source: "old.pub", Data: signPublicBytes(t, expired)})
		}, want: sigstore.ErrKeyExpired, msg: "old.pub"},
		{name: "a listed maintainer without a key", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Maintainers = []string{testkeys.Fingerprint("alice"), testkeys.Fingerprint("carol")}
		}, want: ErrMissingKey, msg: "no key for " + testkeys.Fingerprint("carol") + " among the 2 key(s) given"},
		{name: "a listed maintainer's key expired", setup: func(t *testing.T, _ *gitstore.Repo, o *InitOptions) {
			o.Keys = append(o.Keys, PublicKey{Source: "keyring.pgp", Data: signPublicBytes(t, expired)})
			o.Maintainers = []string{testkeys.Fingerprint("alice"), signFingerprint(expired)}
		}, want: sigstore.ErrKeyExpired, msg: "key file keyring.pgp: key " + signFingerprint(expired)},
		{name: "bad namespace", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Namespace = "Stage X" },
			want: policy.ErrBadPolicy, msg: "namespace"},
		{name: "reserved namespace", setup: func(_ *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Namespace = "builds" },
			want: policy.ErrBadPolicy, msg: "reserved"},
		{name: "commit signer not among the keys", setup: func(t *testing.T, _ *gitstore.Repo, o *InitOptions) { o.Signer = signerFor(t, "mallory") },
			want: ErrUntrustedSigner},
		{name: "already initialised", setup: func(t *testing.T, repo *gitstore.Repo, _ *InitOptions) { signInitRepo(t, repo, 1, "carol") },
			want: ErrAlreadyInitialised},
		{name: "untracked tally.toml", setup: func(t *testing.T, repo *gitstore.Repo, _ *InitOptions) {
			signFirstCommit(t, repo, gitstore.Change{Path: "README", Data: []byte("x\n")})
			if err := os.WriteFile(filepath.Join(repo.WorkDir(), "tally.toml"), []byte("# mine\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: gitstore.ErrDirty, msg: "tally.toml: untracked"},
		{name: "detached HEAD", setup: func(t *testing.T, repo *gitstore.Repo, _ *InitOptions) {
			signFirstCommit(t, repo, gitstore.Change{Path: "README", Data: []byte("x\n")})
			if err := os.WriteFile(filepath.Join(repo.GitDir(), "HEAD"), []byte(signHead(t, repo).String()+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: ErrDetached},
		{name: "locked", setup: func(t *testing.T, repo *gitstore.Repo, o *InitOptions) {
			other, err := gitstore.Open(repo.WorkDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			unlock, err := other.Lock(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unlock() })
			o.LockWait = 50 * time.Millisecond
		}, want: gitstore.ErrLocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := signDiskRepo(t)
			opts := InitOptions{Namespace: "stagex", Keys: signFixtureKeys("alice", "bob"), Signer: signerFor(t, "alice"), Now: signClock}
			tc.setup(t, repo, &opts)
			before := signStateOf(t, repo)
			res, err := Init(context.Background(), repo, opts)
			if err == nil {
				t.Fatalf("Init succeeded: %+v", res)
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, tc.want) {
				t.Errorf("Init error %v, want one wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Init error %q does not say %q", err, tc.msg)
			}
			before.unchanged(t, repo)
		})
	}
}

// TestInitMaintainers takes the maintainer set from a list of fingerprints
// (StageX's MAINTAINERS) and their keys from a keyring holding more keys:
// the others, even an expired one, are ignored and counted.
func TestInitMaintainers(t *testing.T) {
	t.Parallel()
	expired := signNewKey(t, "old", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour)
	var keyring []byte
	for _, n := range []string{"alice", "bob", "carol", "mallory"} {
		kr, err := sigstore.ReadKeyring(testkeys.Public(n))
		if err != nil {
			t.Fatal(err)
		}
		var bin bytes.Buffer
		if err := kr.Serialize(&bin); err != nil {
			t.Fatal(err)
		}
		keyring = append(keyring, bin.Bytes()...)
	}
	keyring = append(keyring, signPublicBytes(t, expired)...)
	repo := signDiskRepo(t)
	res, err := Init(context.Background(), repo, InitOptions{Namespace: "stagex",
		Keys:        []PublicKey{{Source: "stagex-keyring.pgp", Data: keyring}},
		Maintainers: []string{strings.ToLower(testkeys.Fingerprint("bob")), testkeys.Fingerprint("alice")},
		Signer:      signerFor(t, "alice"), Now: signClock})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range res.Keys {
		got = append(got, k.Fingerprint)
	}
	want := []string{testkeys.Fingerprint("alice"), testkeys.Fingerprint("bob")}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if res.IgnoredKeys != 3 {
		t.Errorf("IgnoredKeys = %d, want 3", res.IgnoredKeys)
	}
	if res.Policy.Threshold != 2 {
		t.Errorf("threshold %d, want 2", res.Policy.Threshold)
	}
	kr, err := sigstore.ReadKeyring([]byte(snapshotFiles(t, repo)["stagex-keyring.pgp"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(kr.Keys()) != 2 {
		t.Errorf("the committed keyring holds %d keys, want the 2 maintainers'", len(kr.Keys()))
	}
}

// signFingerprint is an entity's primary fingerprint as tally writes it.
func signFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}
