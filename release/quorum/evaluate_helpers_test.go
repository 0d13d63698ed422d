package quorum

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// Helpers of the evaluate, quorum, report and verify tests, prefixed fx so
// that they stay apart from the other tests of the package.

// fxEpoch is when fixture repositories start; fxNow is the clock of the
// evaluations (keys made by fxKey are created relative to the real time,
// see there).
var fxEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fxDigest is a made-up manifest digest.
func fxDigest(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fxPath is the lookaside path of signature n of image name at digest.
func fxPath(name, digest string, n int) string {
	return sigstore.Location{Repository: "stagex/" + name, Digest: digest, Number: n}.Path()
}

// fxPayload is the payload of a signature of stagex/name:tag at digest.
func fxPayload(t testing.TB, name, tag, digest string) []byte {
	t.Helper()
	data, err := sigstore.Payload{Reference: "stagex/" + name + ":" + tag, Digest: digest, Creator: "tally test"}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fxSign signs stagex/name:tag at digest with s.
func fxSign(t testing.TB, s sigstore.Signer, name, tag, digest string) []byte {
	t.Helper()
	blob, err := s.SignMessage(fxPayload(t, name, tag, digest))
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// fxKey is a key generated with go-crypto for what the fixtures lack:
// expiry, revocation, a primary key with a signing subkey.
type fxKey struct {
	entity *openpgp.Entity
	signer *sigstore.KeySigner // made before any revocation
}

// newFxKey makes an Ed25519 (legacy EdDSA) key created at created that
// expires after lifetime (never when 0). The signer is made now, so the key
// must be valid now.
func newFxKey(t testing.TB, name string, created time.Time, lifetime time.Duration) *fxKey {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created },
		KeyLifetimeSecs: uint32(lifetime / time.Second), DefaultHash: crypto.SHA256}
	e, err := openpgp.NewEntity(name, "tally TEST KEY, not secret", name+"@example.invalid", cfg)
	if err != nil {
		t.Fatalf("generating key %s: %v", name, err)
	}
	var sec bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&sec, nil); err != nil {
		t.Fatal(err)
	}
	s, err := sigstore.NewKeySigner(sec.Bytes(), nil)
	if err != nil {
		t.Fatalf("signer for %s: %v", name, err)
	}
	return &fxKey{entity: e, signer: s}
}

// revoke revokes the key at time at with a reason (nil: no reason subpacket).
func (k *fxKey) revoke(t testing.TB, reason *packet.ReasonForRevocation, at time.Time) {
	t.Helper()
	cfg := &packet.Config{Time: func() time.Time { return at }}
	if reason == nil {
		// go-crypto always writes a reason; build a revocation without one.
		sig := &packet.Signature{Version: k.entity.PrimaryKey.Version, CreationTime: at, SigType: packet.SigTypeKeyRevocation,
			PubKeyAlgo: k.entity.PrimaryKey.PubKeyAlgo, Hash: crypto.SHA256, IssuerKeyId: &k.entity.PrimaryKey.KeyId}
		if err := sig.RevokeKey(k.entity.PrimaryKey, k.entity.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
		k.entity.Revocations = append(k.entity.Revocations, sig)
		return
	}
	if err := k.entity.RevokeKey(*reason, "test revocation", cfg); err != nil {
		t.Fatal(err)
	}
}

// public returns the key's public part, binary.
func (k *fxKey) public(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := k.entity.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signWith signs a payload with a chosen key of the entity (primary or a
// subkey, by key ID), optionally with a signature lifetime.
func (k *fxKey) signWith(t testing.TB, keyID uint64, lifetime time.Duration, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256, SigningKeyId: keyID, SigLifetimeSecs: uint32(lifetime / time.Second)}
	w, err := openpgp.Sign(&buf, k.entity, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fxKeyring returns the binary keyring of public keys given armored (the
// testkeys fixtures) or binary (fxKey.public).
func fxKeyring(t testing.TB, pubs ...[]byte) []byte {
	t.Helper()
	var all bytes.Buffer
	for _, p := range pubs {
		kr, err := sigstore.ReadKeyring(p)
		if err != nil {
			t.Fatalf("reading key: %v", err)
		}
		if err := kr.Serialize(&all); err != nil {
			t.Fatal(err)
		}
	}
	return all.Bytes()
}

// fxPublic returns the armored public keys of the named fixtures.
func fxPublic(names ...string) [][]byte {
	var out [][]byte
	for _, n := range names {
		out = append(out, testkeys.Public(n))
	}
	return out
}

// fxRepo is a signatures repository in memory whose commits carry chosen
// committer times.
type fxRepo struct {
	t    testing.TB
	repo *gitstore.Repo
	tip  plumbing.Hash
}

// newFxRepo commits a policy with threshold and a keyring of pubs at
// fxEpoch. The policy is written directly (not with Init) so that it may
// hold keys Init refuses, such as expired ones.
func newFxRepo(t testing.TB, threshold int, pubs ...[]byte) *fxRepo {
	t.Helper()
	return newFxRepoOn(t, gitstore.NewMemory(false), threshold, pubs...)
}

// newFxRepoOn is newFxRepo on a given (empty) repository.
func newFxRepoOn(t testing.TB, repo *gitstore.Repo, threshold int, pubs ...[]byte) *fxRepo {
	t.Helper()
	return newFxRepoKeyring(t, repo, threshold, fxKeyring(t, pubs...))
}

// newFxRepoKeyring is newFxRepoOn with a keyring made by fxKeyring.
func newFxRepoKeyring(t testing.TB, repo *gitstore.Repo, threshold int, keyring []byte) *fxRepo {
	t.Helper()
	r := &fxRepo{t: t, repo: repo}
	p := policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: threshold, Keyring: "stagex-keyring.pgp"}
	r.commit(fxEpoch, gitstore.Change{Path: policy.PolicyFile, Data: p.Marshal()}, gitstore.Change{Path: p.Keyring, Data: keyring})
	return r
}

// commit commits changes with committer time at.
func (r *fxRepo) commit(at time.Time, changes ...gitstore.Change) plumbing.Hash {
	r.t.Helper()
	who := object.Signature{Name: "tally test", Email: "test@example.invalid", When: at}
	req := gitstore.CommitRequest{Branch: "main", Changes: changes, Message: fmt.Sprintf("%d change(s)", len(changes)), Author: who, Committer: who}
	if !r.tip.IsZero() {
		req.Parents = []plumbing.Hash{r.tip}
	}
	h, err := r.repo.Commit(req)
	if err != nil {
		r.t.Fatalf("commit: %v", err)
	}
	r.tip = h
	return h
}

// gitstoreChange is a change of a commit.
type gitstoreChange = gitstore.Change

// fxName returns the fixture name of a fingerprint, or the fingerprint.
func fxName(fpr string) string {
	for _, n := range testkeys.Names {
		if testkeys.Fingerprint(n) == fpr {
			return n
		}
	}
	return fpr
}

// file is a change writing data at path.
func file(path string, data []byte) gitstore.Change { return gitstore.Change{Path: path, Data: data} }

// record is the change writing a build record of fpr for release rel.
func (r *fxRepo) record(rel, fpr string, at time.Time, built ...record.Built) gitstore.Change {
	r.t.Helper()
	var rec record.BuildRecord
	rec.Append(record.Run{Time: at.UTC().Truncate(time.Second), Source: "0123456789abcdef", Dirty: "no", Platform: "linux/amd64",
		CPUVendor: "GenuineIntel", CPUModel: "test-cpu", Tally: "test"}, built)
	return file(policy.BuildRecordPath(rel, fpr), rec.Marshal())
}

// evaluate evaluates the tip at now.
func (r *fxRepo) evaluate(now time.Time, opts EvaluateOptions) (*Evaluation, error) {
	r.t.Helper()
	st, err := policy.LoadHead(r.repo)
	if err != nil {
		return nil, err
	}
	opts.Now = func() time.Time { return now }
	return Evaluate(context.Background(), st, opts)
}

// mustEvaluate is evaluate that fails the test on error.
func (r *fxRepo) mustEvaluate(now time.Time, opts EvaluateOptions) *Evaluation {
	r.t.Helper()
	ev, err := r.evaluate(now, opts)
	if err != nil {
		r.t.Fatalf("Evaluate: %v", err)
	}
	return ev
}

// fxImage finds the image of a report by reference and release.
func fxImage(t testing.TB, rep *Report, ref, rel string) ImageStatus {
	t.Helper()
	for _, img := range rep.Images {
		if img.Reference == ref && img.Release == rel {
			return img
		}
	}
	t.Fatalf("no image %s (release %q) in report: %+v", ref, rel, rep.Images)
	return ImageStatus{}
}

// fxRow finds the digest row of an image.
func fxRow(t testing.TB, img ImageStatus, digest string) DigestStatus {
	t.Helper()
	for _, d := range img.Digests {
		if d.Digest == digest {
			return d
		}
	}
	t.Fatalf("no digest %s in image %s: %+v", digest, img.Reference, img.Digests)
	return DigestStatus{}
}

// fxProblems lists the problems of a report as "kind path".
func fxProblems(rep *Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.Kind+" "+p.Path)
	}
	return out
}
