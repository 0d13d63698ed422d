package release

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// Every refusal of Sign: the documented error, the branch unmoved, the
// working tree and the index as they were, no temporary file left behind.

func TestSignRefusals(t *testing.T) {
	t.Parallel()
	imgs := signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"},
		sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: []string{"linux/amd64", "linux/arm64"}})
	helloDigest := imgs[0].Manifests[0].Digest
	if imgs[0].Name != "core-hello" {
		t.Fatalf("images out of order: %s first", imgs[0].Name)
	}
	sigPath := "stagex/core-hello@sha256=" + strings.TrimPrefix(helloDigest, "sha256:") + "/signature-1"
	recPath := policy.BuildRecordPath("2026.11.0", signerFor(t, "alice").Fingerprint())

	writeFile := func(t *testing.T, repo *gitstore.Repo, p, data string) {
		t.Helper()
		full := filepath.Join(repo.WorkDir(), filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, repo *gitstore.Repo, opts *SignOptions)
		want  error  // errors.Is target, when there is one
		msg   string // part of the message
	}{
		{
			name:  "outsider key",
			setup: func(t *testing.T, _ *gitstore.Repo, o *SignOptions) { o.Signer = signerFor(t, "mallory") },
			want:  ErrUntrustedSigner, msg: "not a maintainer key",
		},
		{
			name:  "bad release name",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) { o.Release = "../../etc" },
			msg:   "release",
		},
		{
			name: "untracked file at a signature path",
			setup: func(t *testing.T, repo *gitstore.Repo, _ *SignOptions) {
				writeFile(t, repo, sigPath, "someone's work")
			},
			want: gitstore.ErrDirty, msg: "untracked file",
		},
		{
			name: "modified build record",
			setup: func(t *testing.T, repo *gitstore.Repo, o *SignOptions) {
				// alice signed core-hello already; her record is tracked and now edited.
				signMust(t, repo, signOpts(t, "alice", imgs[:1]))
				writeFile(t, repo, recPath, "edited by hand\n")
			},
			want: gitstore.ErrDirty, msg: "modified in the working tree",
		},
		{
			name: "directory where a signature goes",
			setup: func(t *testing.T, repo *gitstore.Repo, _ *SignOptions) {
				writeFile(t, repo, sigPath+"/oops", "x")
			},
			want: gitstore.ErrDirty,
		},
		{
			name: "image name with a slash",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = signRenamed(imgs, "core/hello")
			},
			want: ErrOutsideNamespace,
		},
		{
			name: "image name climbing out",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = signRenamed(imgs, "..")
			},
			want: ErrOutsideNamespace,
		},
		{
			name: "upper-case image name",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = signRenamed(imgs, "Core-Hello")
			},
			want: ErrOutsideNamespace,
		},
		{
			name: "empty image name",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = signRenamed(imgs, "")
			},
			want: ErrOutsideNamespace,
		},
		{
			name: "tag no client accepts",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = append([]buildout.Image(nil), imgs...)
				o.Images[1].Tag = "not a tag"
			},
			want: sigstore.ErrInvalidPayload,
		},
		{
			name: "signing fails midway",
			setup: func(t *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Signer = &signFailingSigner{Signer: signerFor(t, "alice"), failAt: 2}
				o.Parallel = 1
			},
			want: errSignCardRemoved,
		},
		{
			name: "signing the commit fails",
			setup: func(t *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Signer = &signFailingSigner{Signer: signerFor(t, "alice"), detach: true}
			},
			want: errSignCardRemoved,
		},
		{
			name: "detached HEAD",
			setup: func(t *testing.T, repo *gitstore.Repo, _ *SignOptions) {
				head := signHead(t, repo)
				if err := os.WriteFile(filepath.Join(repo.GitDir(), "HEAD"), []byte(head.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrDetached,
		},
		{
			name: "expired in the repository's keyring",
			setup: func(t *testing.T, repo *gitstore.Repo, o *SignOptions) {
				// The keyring knows the key expires; the secret key file
				// is valid today. Signatures made later would never count.
				o.Now = func() time.Time { return signNow.Add(400 * 24 * time.Hour) }
				o.Signer = signKeyringUpdate(t, repo, "erin", false)
			},
			want: sigstore.ErrKeyExpired, msg: "expired",
		},
		{
			name: "revoked in the repository's keyring",
			setup: func(t *testing.T, repo *gitstore.Repo, o *SignOptions) {
				o.Signer = signKeyringUpdate(t, repo, "rita", true)
			},
			want: sigstore.ErrKeyRevoked, msg: "revoked",
		},
		{
			name: "signing subkey revoked in the repository's keyring",
			setup: func(t *testing.T, repo *gitstore.Repo, o *SignOptions) {
				// dave signs with his only signing subkey; the keyring says
				// it was superseded yesterday, his secret key file does not.
				o.Signer = signSubkeyRevoked(t, repo, "dave")
			},
			want: sigstore.ErrKeyRevoked, msg: "subkey ",
		},
		{
			name: "canceled",
			setup: func(_ *testing.T, _ *gitstore.Repo, o *SignOptions) {
				o.Images = imgs
			},
			want: context.Canceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := signDiskRepo(t)
			signInitRepo(t, repo, 1, "alice", "bob")
			opts := signOpts(t, "alice", imgs)
			tc.setup(t, repo, &opts)
			before := signStateOf(t, repo)
			ctx := context.Background()
			if tc.name == "canceled" {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			res, err := Sign(ctx, repo, opts)
			if err == nil {
				t.Fatalf("Sign succeeded: %+v", res)
			}
			t.Logf("refused: %v", err)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Sign error %v, want one wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Sign error %q does not say %q", err, tc.msg)
			}
			before.unchanged(t, repo)
		})
	}
}

// signRenamed returns the images with the first one signRenamed.
func signRenamed(imgs []buildout.Image, name string) []buildout.Image {
	out := append([]buildout.Image(nil), imgs...)
	out[0].Name = name
	return out
}

// signKeyringUpdate adds a maintainer key to the repository's keyring in a
// commit: one that expires a year after it was made or, when revoked, one
// whose keyring copy carries a hard revocation that its secret key file
// lacks. It returns a signer for the key's secret part.
func signKeyringUpdate(t *testing.T, repo *gitstore.Repo, name string, revoked bool) sigstore.Signer {
	t.Helper()
	lifetime := 365 * 24 * time.Hour
	if revoked {
		lifetime = 0
	}
	created := signNow.Add(-24 * time.Hour)
	e := signNewKey(t, name, created, lifetime)
	secret := signSecretBytes(t, e)
	if revoked {
		if err := e.RevokeKey(packet.KeyCompromised, "test revocation", &packet.Config{Time: func() time.Time { return created.Add(time.Hour) }}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := st.Snap.ReadFile(st.Policy.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	signCommitDirect(t, repo, "add "+name, gitstore.Change{Path: st.Policy.Keyring, Data: append(ring, signPublicBytes(t, e)...)})
	s, err := sigstore.NewKeySigner(secret, nil)
	if err != nil {
		t.Fatalf("NewKeySigner(%s): %v", name, err)
	}
	return s
}

// signSubkeyRevoked adds a fixture key to the repository's keyring with its
// signing subkey revoked (key superseded) a day before signNow, and returns a
// signer for its secret key file, which knows nothing of that.
func signSubkeyRevoked(t *testing.T, repo *gitstore.Repo, name string) sigstore.Signer {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret(name)))
	if err != nil {
		t.Fatal(err)
	}
	e := el[0]
	if err := e.RevokeSubkey(&e.Subkeys[0], packet.KeySuperseded, "new subkey", &packet.Config{Time: func() time.Time { return signNow.Add(-24 * time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	st, err := policy.LoadHead(repo)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := st.Snap.ReadFile(st.Policy.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	signCommitDirect(t, repo, "add "+name, gitstore.Change{Path: st.Policy.Keyring, Data: append(ring, pub.Bytes()...)})
	s, err := sigstore.NewKeySigner(testkeys.Secret(name), nil)
	if err != nil {
		t.Fatalf("NewKeySigner(%s): %v", name, err)
	}
	if s.SigningKey() == s.Fingerprint() {
		t.Fatalf("%s signs with its primary key; the test would prove nothing", name)
	}
	return s
}

func TestSignWaitsForTheLockThenFails(t *testing.T) {
	t.Parallel()
	repo := signDiskRepo(t)
	signInitRepo(t, repo, 1, "alice")
	imgs := signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"})

	// Another tally (another open file description of the lock file: flock
	// locks conflict within one process too) holds the lock.
	other, err := gitstore.Open(repo.WorkDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	unlock, err := other.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := signStateOf(t, repo)
	opts := signOpts(t, "alice", imgs)
	opts.LockWait = 150 * time.Millisecond
	start := time.Now()
	_, err = Sign(context.Background(), repo, opts)
	if !errors.Is(err, gitstore.ErrLocked) {
		t.Fatalf("Sign with the lock held: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < opts.LockWait {
		t.Errorf("Sign gave up after %v, before waiting %v", waited, opts.LockWait)
	}
	if !strings.Contains(err.Error(), "waited 150ms") {
		t.Errorf("error %q does not say how long it waited", err)
	}
	before.unchanged(t, repo)

	// The first writer finishes while the second waits: the second goes on.
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = unlock()
	}()
	opts.LockWait = time.Minute
	res, err := Sign(context.Background(), repo, opts)
	if err != nil {
		t.Fatalf("Sign after the lock was released: %v", err)
	}
	if len(res.Signed) != 1 || res.Commit == "" {
		t.Errorf("Sign after waiting: %d new signature(s), commit %q", len(res.Signed), res.Commit)
	}
}

func TestSignOnMemoryRepositoryWaitsForLock(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	signInitRepo(t, repo, 1, "alice")
	unlock, err := repo.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock() //nolint:errcheck // a flock release cannot fail usefully in a test
	opts := signOpts(t, "alice", signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"}))
	opts.LockWait = 50 * time.Millisecond
	before := signHead(t, repo)
	if _, err := Sign(context.Background(), repo, opts); !errors.Is(err, gitstore.ErrLocked) {
		t.Fatalf("Sign: %v, want ErrLocked", err)
	}
	if signHead(t, repo) != before {
		t.Error("the branch moved")
	}
}

func TestSignNotASignaturesRepository(t *testing.T) {
	t.Parallel()
	repo := gitstore.NewMemory(true)
	opts := signOpts(t, "alice", signSampleImages(t, sample.Spec{Name: "core-hello", Tag: "1.0"}))
	if _, err := Sign(context.Background(), repo, opts); !errors.Is(err, policy.ErrNoPolicy) {
		t.Errorf("Sign on an empty repository: %v, want ErrNoPolicy", err)
	}
	signFirstCommit(t, repo, gitstore.Change{Path: "README", Data: []byte("not tally's\n")})
	if _, err := Sign(context.Background(), repo, opts); !errors.Is(err, policy.ErrNoPolicy) {
		t.Errorf("Sign on a repository without tally.toml: %v, want ErrNoPolicy", err)
	}
	opts.Signer = nil
	if _, err := Sign(context.Background(), repo, opts); err == nil {
		t.Error("Sign without a signer succeeded")
	}
}

func signFirstCommit(t *testing.T, repo *gitstore.Repo, changes ...gitstore.Change) {
	t.Helper()
	who := authorOf("Test <test@example.invalid>", signNow)
	if _, err := repo.Commit(gitstore.CommitRequest{Branch: "main", Parents: []plumbing.Hash{plumbing.ZeroHash},
		Changes: changes, Message: "first", Author: who}); err != nil {
		t.Fatal(err)
	}
}
