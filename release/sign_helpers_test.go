package release

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// signNow is the fixed clock of the sign and init tests.
var signNow = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

func signClock() time.Time { return signNow }

// signFixtureKeys returns the public keys of the named fixtures for Init.
func signFixtureKeys(names ...string) []PublicKey {
	keys := make([]PublicKey, len(names))
	for i, n := range names {
		keys[i] = PublicKey{Source: n + ".pub.asc", Data: testkeys.Public(n)}
	}
	return keys
}

// signDiskRepo is a new repository with a working tree in a temporary directory.
func signDiskRepo(t testing.TB) *gitstore.Repo {
	t.Helper()
	r, err := gitstore.Init(t.TempDir(), false, "main")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// signInitRepo runs Init for the named maintainers with the given threshold.
func signInitRepo(t testing.TB, repo *gitstore.Repo, threshold int, names ...string) {
	t.Helper()
	if _, err := Init(context.Background(), repo, InitOptions{
		Namespace: "stagex", Threshold: threshold, Keys: signFixtureKeys(names...), Now: signClock,
	}); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

// signSampleImages writes sample layouts and reads them back as sign gets them.
func signSampleImages(t testing.TB, specs ...sample.Spec) []buildout.Image {
	t.Helper()
	dir := t.TempDir()
	if _, err := sample.Write(dir, specs...); err != nil {
		t.Fatal(err)
	}
	imgs, err := buildout.Read(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// signOpts are the options of a sign run by the named fixture key.
func signOpts(t testing.TB, who string, images []buildout.Image) SignOptions {
	return SignOptions{Release: "2026.11.0", Images: images, Signer: signerFor(t, who), Now: signClock,
		Creator: "tally test", Run: record.Run{Source: "unknown", Dirty: "unknown", Platform: "linux/amd64",
			CPUVendor: "unknown", CPUModel: "unknown", Tally: "test"}}
}

func signMust(t testing.TB, repo *gitstore.Repo, opts SignOptions) *SignResult {
	t.Helper()
	res, err := Sign(context.Background(), repo, opts)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return res
}

func signHead(t testing.TB, repo *gitstore.Repo) plumbing.Hash {
	t.Helper()
	_, tip, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	return tip
}

// signCommitDirect commits changes on main directly, as another tool would.
func signCommitDirect(t testing.TB, repo *gitstore.Repo, msg string, changes ...gitstore.Change) plumbing.Hash {
	t.Helper()
	who := authorOf("Test <test@example.invalid>", signNow)
	h, err := repo.Commit(gitstore.CommitRequest{Branch: "main", Parents: []plumbing.Hash{signHead(t, repo)},
		Changes: changes, Message: msg, Author: who})
	if err != nil {
		t.Fatalf("committing %s: %v", msg, err)
	}
	return h
}

// signTreeState is everything on disk that a failed command must leave as it
// was: every file of the working tree with its contents, the index, and HEAD.
type signTreeState struct {
	head  plumbing.Hash
	files map[string]string
	index []byte
}

func signStateOf(t testing.TB, repo *gitstore.Repo) signTreeState {
	t.Helper()
	s := signTreeState{head: signHead(t, repo), files: map[string]string{}}
	root := repo.WorkDir()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".git" {
			return fs.SkipDir
		}
		if d.IsDir() {
			s.files[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(p)
		s.files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.index, _ = os.ReadFile(filepath.Join(repo.GitDir(), "index"))
	return s
}

// unchanged fails the test if the branch moved or any file, the index or
// a temporary file differs from before.
func (before signTreeState) unchanged(t testing.TB, repo *gitstore.Repo) {
	t.Helper()
	after := signStateOf(t, repo)
	if after.head != before.head {
		t.Errorf("the branch moved from %s to %s", before.head, after.head)
	}
	for p, data := range after.files {
		if old, ok := before.files[p]; !ok {
			t.Errorf("%s was left behind", p)
		} else if old != data {
			t.Errorf("%s changed", p)
		}
	}
	for p := range before.files {
		if _, ok := after.files[p]; !ok {
			t.Errorf("%s was removed", p)
		}
	}
	if !bytes.Equal(after.index, before.index) {
		t.Error("the index changed")
	}
	if strings.Contains(strings.Join(signKeysOf(after.files), "\n"), ".tally-") {
		t.Error("a temporary file was left behind")
	}
}

func signKeysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// signNewKey generates an Ed25519 (legacy EdDSA) key with go-crypto, created at
// created and expiring after lifetime (0: never).
func signNewKey(t testing.TB, name string, created time.Time, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "tally TEST KEY, not secret", name+"@example.invalid", &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: uint32(lifetime / time.Second),
	})
	if err != nil {
		t.Fatalf("generating key %s: %v", name, err)
	}
	return e
}

func signPublicBytes(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func signSecretBytes(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signFailingSigner signs like its key until failAt SignMessage calls were
// made, then fails; with detach set SignDetached fails.
type signFailingSigner struct {
	sigstore.Signer
	mu     sync.Mutex
	calls  int
	failAt int
	detach bool
}

func (s *signFailingSigner) SignMessage(p []byte) ([]byte, error) {
	s.mu.Lock()
	s.calls++
	fail := s.failAt > 0 && s.calls >= s.failAt
	s.mu.Unlock()
	if fail {
		return nil, errSignCardRemoved
	}
	return s.Signer.SignMessage(p)
}

func (s *signFailingSigner) SignDetached(d []byte) ([]byte, error) {
	if s.detach {
		return nil, errSignCardRemoved
	}
	return s.Signer.SignDetached(d)
}

var errSignCardRemoved = &signTestError{"card removed"}

type signTestError struct{ msg string }

func (e *signTestError) Error() string { return e.msg }

// signNewKeyWith generates a key with the given algorithm (and RSA size)
// with go-crypto, created now.
func signNewKeyWith(t testing.TB, name string, algo packet.PublicKeyAlgorithm, bits int) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "tally TEST KEY, not secret", name+"@example.invalid", &packet.Config{
		Algorithm: algo, RSABits: bits,
	})
	if err != nil {
		t.Fatalf("generating key %s: %v", name, err)
	}
	return e
}
