package sigstore

import (
	"bytes"
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// signAt signs payload with the key keyID of e (0: go-crypto's choice),
// created at created and expiring after lifetime (0: never).
func signAt(t testing.TB, e *openpgp.Entity, keyID uint64, created time.Time, lifetime time.Duration, p Payload) []byte {
	t.Helper()
	body, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256, SigningKeyId: keyID, SigLifetimeSecs: uint32(lifetime / time.Second),
		Time: func() time.Time { return created }}
	w, err := openpgp.Sign(&buf, e, &openpgp.FileHints{IsBinary: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJudgeFilesOrder checks the order of the rules of the whole judgement:
// format and location, then lifetimes at the caller's times, then the
// directory rules over the files that still count.
func TestJudgeFilesOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // after the fixtures were made
	now := t0.Add(60 * 24 * time.Hour)
	// exp: a key that expires 30 days after t0, with a signing subkey.
	exp := newEntity(t, "exp", keyOptions{created: t0, lifetime: 30 * 24 * time.Hour})
	if err := exp.AddSigningSubkey(&packet.Config{Time: func() time.Time { return t0 }, KeyLifetimeSecs: 0}); err != nil {
		t.Fatal(err)
	}
	sub := exp.Subkeys[len(exp.Subkeys)-1].PublicKey.KeyId
	prim := exp.PrimaryKey.KeyId
	// sup: a key revoked as superseded 40 days after t0.
	// bad: a key revoked as compromised. Both sign before they are revoked.
	sup := newEntity(t, "sup", keyOptions{created: t0})
	bad := newEntity(t, "bad", keyOptions{created: t0})
	supBlob := signAt(t, sup, 0, t0.Add(24*time.Hour), 0, testPayload)
	badBlob := signAt(t, bad, 0, t0.Add(24*time.Hour), 0, testPayload)
	revoke(t, sup, packet.KeySuperseded, t0.Add(40*24*time.Hour))
	revoke(t, bad, packet.KeyCompromised, t0.Add(50*24*time.Hour))
	var all bytes.Buffer
	if err := mustKeyring(t, "alice", "bob").Serialize(&all); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*openpgp.Entity{exp, sup, bad} {
		all.Write(publicOf(t, e))
	}
	keys, err := ReadKeyring(all.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	alice := fixtureSigner(t, "alice").entity
	bob := fixtureSigner(t, "bob").entity
	otherDigest := "sha256:" + strings.Repeat("cd", 32)
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	good := func(e *openpgp.Entity) []byte { return signAt(t, e, 0, day(1), 0, testPayload) }

	type file struct {
		n       int
		blob    []byte
		entered time.Time
	}
	type want struct {
		problem Kind
		clients string // a substring of Verdict.Clients; "" for none
	}
	tests := []struct {
		name   string
		keyNow bool
		files  []file
		want   []want
	}{
		{"expired then valid by one key counts once", false,
			[]file{{1, signAt(t, alice, 0, day(1), time.Hour, testPayload), day(1)}, {2, good(alice), day(2)}, {3, good(alice), day(3)}},
			[]want{{KindSignatureExpired, ""}, {"", ""}, {KindDuplicateSigner, ""}}},
		{"invalid then valid by one key counts once", false,
			[]file{{1, signAt(t, alice, 0, day(1), 0, Payload{Reference: testPayload.Reference, Digest: otherDigest}), day(1)}, {2, good(alice), day(2)}},
			[]want{{KindWrongDigest, ""}, {"", ""}}},
		{"other image then valid", false,
			[]file{{1, signAt(t, alice, 0, day(1), 0, Payload{Reference: "stagex/core-musl:1", Digest: testDigest}), day(1)}, {2, good(alice), day(2)}},
			[]want{{KindWrongIdentity, ""}, {"", ""}}},
		{"gap-hidden own signature", false,
			[]file{{1, good(bob), day(1)}, {3, good(alice), day(1)}},
			[]want{{"", ""}, {KindGap, ""}}},
		{"expired signature still opens no gap", false,
			[]file{{1, signAt(t, bob, 0, day(1), time.Hour, testPayload), day(1)}, {2, good(alice), day(1)}},
			[]want{{KindSignatureExpired, ""}, {"", ""}}},
		{"subkey and primary of one key count once", false,
			[]file{{1, signAt(t, exp, sub, day(1), 0, testPayload), day(1)}, {2, signAt(t, exp, prim, day(1), 0, testPayload), day(2)}},
			[]want{{"", "podman and skopeo judge the key now"}, {KindDuplicateSigner, ""}}},
		{"key expired before entering does not take the slot", false,
			[]file{{1, signAt(t, exp, prim, day(1), 0, testPayload), day(31)}, {2, signAt(t, exp, sub, day(1), 0, testPayload), day(2)}},
			[]want{{KindKeyNotValid, ""}, {"", "refuse it"}}},
		{"key expired since: counts, clients refuse", false,
			[]file{{1, signAt(t, exp, prim, day(1), 0, testPayload), day(2)}},
			[]want{{"", "expired"}}},
		{"a file about to enter with a key expired now", true,
			[]file{{1, signAt(t, exp, prim, day(1), 0, testPayload), day(2)}},
			[]want{{KindKeyNotValid, ""}}},
		{"soft revocation after entering counts", false,
			[]file{{1, supBlob, day(2)}}, []want{{"", "revoked"}}},
		{"soft revocation before entering", false,
			[]file{{1, supBlob, day(41)}}, []want{{KindKeyNotValid, ""}}},
		{"hard revocation never counts", false,
			[]file{{1, badBlob, day(2)}, {2, good(alice), day(2)}}, []want{{KindKeyNotValid, ""}, {"", ""}}},
		{"poison hides the valid ones", false,
			[]file{{1, good(alice), day(1)}, {2, []byte("garbage"), day(1)}},
			[]want{{KindPoisoned, ""}, {KindGarbage, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var files []File
			for _, f := range tt.files {
				sig, err := Verify(f.blob, keys)
				files = append(files, File{Location: loc(f.n), Repository: "stagex/core-gcc", Signature: sig, VerifyErr: err,
					Times: Times{Entered: f.entered, Now: now, KeyNow: tt.keyNow}})
			}
			got := JudgeFiles(files, keys)
			if len(got) != len(tt.want) {
				t.Fatalf("%d verdicts, want %d", len(got), len(tt.want))
			}
			for i, v := range got {
				if v.Location.Number != tt.files[i].n {
					t.Errorf("verdict %d is of signature-%d, not in the order given", i, v.Location.Number)
				}
				w := tt.want[i]
				if v.Problem != w.problem || v.Severity != w.problem.Severity() {
					t.Errorf("signature-%d: %q/%q (%s), want %q", v.Location.Number, v.Problem, v.Severity, v.Message, w.problem)
				}
				if (w.clients == "") != (v.Clients == "") || !strings.Contains(v.Clients, w.clients) {
					t.Errorf("signature-%d: clients %q, want %q", v.Location.Number, v.Clients, w.clients)
				}
			}
			// The steps one by one give the same verdicts, sorted.
			var steps []Verdict
			for _, f := range files {
				steps = append(steps, JudgeLifetime(JudgeVerified(f.Location, f.Repository, f.Signature, f.VerifyErr), keys, f.Times))
			}
			for i, v := range JudgeDirectory(steps) {
				if v != got[i] && tt.files[i].n == v.Location.Number {
					t.Errorf("the steps give %+v, JudgeFiles %+v", v, got[i])
				}
			}
		})
	}
}

// TestJudgeLegacyLocation checks that a legacy payload gets the location
// checks: misfiled it is invalid, well filed a warning, never counted.
func TestJudgeLegacyLocation(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice")
	legacy := func(ref, digest string) []byte {
		body := []byte(`[{"critical":{"identity":{"docker-reference":"` + ref + `"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"pgp container image signature"},"optional":null}]`)
		blob, err := fixtureSigner(t, "alice").SignMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		return blob
	}
	other := strings.Repeat("ef", 32)
	tests := []struct {
		name    string
		blob    []byte
		problem Kind
		message string
	}{
		{"well filed", legacy("stagex/core-gcc", testHex), KindLegacy, "legacy"},
		{"with a tag", legacy("stagex/core-gcc:14", testHex), KindLegacy, "legacy"},
		{"another digest", legacy("stagex/core-gcc", other), KindWrongDigest, "sha256:" + other},
		{"another image", legacy("stagex/core-musl", testHex), KindWrongIdentity, "core-musl"},
		{"not an image name", legacy("Not An Image", testHex), KindWrongIdentity, "not an image name"},
		{"claims nothing", legacy("", ""), KindLegacy, "legacy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := Verify(tt.blob, keys)
			v := JudgeFiles([]File{{Location: loc(1), Repository: "stagex/core-gcc", Signature: sig, VerifyErr: err, Times: Times{Now: time.Now()}}}, keys)[0]
			if v.Problem != tt.problem || !strings.Contains(v.Message, tt.message) {
				t.Errorf("verdict %q: %s; want %q mentioning %q", v.Problem, v.Message, tt.problem, tt.message)
			}
			if v.Signature.Signer == "" {
				t.Error("the verdict lost the signer")
			}
		})
	}
}

// TestMalformedQuotesPath checks that an undecodable entry names its path
// quoted, so a newline cannot forge a line of output.
func TestMalformedQuotesPath(t *testing.T) {
	t.Parallel()
	v := Malformed("stagex/core-gcc@sha256=x\nFAKE/signature-1", "not a lookaside location")
	if v.Problem != KindMalformedPath || v.Severity != SeverityInvalid || strings.Contains(v.Message, "\n") ||
		!strings.Contains(v.Message, `"stagex/core-gcc@sha256=x\nFAKE/signature-1"`) {
		t.Errorf("Malformed = %+v", v)
	}
}

// TestJudgeDirectoryLarge judges one directory of many files given in
// reverse order (speed is BenchmarkJudgeDirectory's).
func TestJudgeDirectoryLarge(t *testing.T) {
	t.Parallel()
	const n = 50000
	in := make([]Verdict, n)
	for i := range in {
		in[i] = Verdict{Location: loc(n - i), Signature: Signature{Signer: string(rune('A' + i%3))}}
	}
	out := JudgeDirectory(in)
	counted := 0
	for i, v := range out {
		if v.Location.Number != i+1 {
			t.Fatalf("out of order at %d: signature-%d", i, v.Location.Number)
		}
		if v.OK() {
			counted++
		}
	}
	if counted != 3 {
		t.Errorf("%d signers counted, want 3", counted)
	}
}

// FuzzLegacyLocation: whatever a legacy payload claims, the location check
// never panics, and it passes only a claim of this directory's digest (or
// none) and of this image (or none).
func FuzzLegacyLocation(f *testing.F) {
	f.Add("stagex/core-gcc", testHex)
	f.Add("stagex/core-gcc:14", "sha256:"+testHex)
	f.Add("docker.io/stagex/core-musl", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, ref, digest string) {
		v := legacyLocation(loc(1), "stagex/core-gcc", Payload{Reference: ref, Digest: digest})
		if v.Problem != "" {
			if v.Severity != SeverityInvalid {
				t.Fatalf("a misfiled legacy file is %q, not invalid", v.Severity)
			}
			return
		}
		if digest != "" && digest != testDigest {
			t.Fatalf("legacy claim of %q passed in the directory of %s", digest, testDigest)
		}
		if ref != "" {
			r, err := parseDockerReference(ref)
			if err != nil || r.repository != "docker.io/stagex/core-gcc" {
				t.Fatalf("legacy claim of %q passed for stagex/core-gcc", ref)
			}
		}
	})
}
