package sigstore

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // SHA-1 and SHA-3 signatures are made to check they are refused
	_ "crypto/sha3"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/internal/testkeys"
)

// signingPrivateKey returns the secret key a fixture's KeySigner uses.
func signingPrivateKey(t testing.TB, name string) *packet.PrivateKey {
	t.Helper()
	s := fixtureSigner(t, name)
	if s.entity.PrivateKey.KeyId == s.keyID {
		return s.entity.PrivateKey
	}
	for _, sub := range s.entity.Subkeys {
		if sub.PrivateKey.KeyId == s.keyID {
			return sub.PrivateKey
		}
	}
	t.Fatalf("no signing key for %s", name)
	return nil
}

// sigPacket makes a v4 SHA-256 binary signature over body with a fixture's
// signing key; edit may change the packet before it is signed.
func sigPacket(t testing.TB, name string, body []byte, edit func(*packet.Signature)) *packet.Signature {
	t.Helper()
	priv := signingPrivateKey(t, name)
	keyID := priv.KeyId
	sig := &packet.Signature{
		Version:           4,
		SigType:           packet.SigTypeBinary,
		PubKeyAlgo:        priv.PubKeyAlgo,
		Hash:              crypto.SHA256,
		CreationTime:      time.Now(),
		IssuerKeyId:       &keyID,
		IssuerFingerprint: priv.Fingerprint,
	}
	if edit != nil {
		edit(sig)
	}
	// No salt notation: go-crypto has no salt size for SHA-1.
	cfg := &packet.Config{NonDeterministicSignaturesViaNotation: ptr(false)}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatalf("preparing signature: %v", err)
	}
	var w io.Writer = h
	if sig.SigType == packet.SigTypeText {
		w = openpgp.NewCanonicalTextHash(h)
	}
	_, _ = w.Write(body) // a hash never fails to write
	if err := sig.Sign(h, priv, cfg); err != nil {
		t.Fatalf("signing: %v", err)
	}
	return sig
}

// opsFor returns the one-pass signature packet announcing sig.
func opsFor(sig *packet.Signature, last bool) *packet.OnePassSignature {
	var id uint64
	if sig.IssuerKeyId != nil {
		id = *sig.IssuerKeyId
	}
	return &packet.OnePassSignature{Version: 3, SigType: sig.SigType, Hash: sig.Hash, PubKeyAlgo: sig.PubKeyAlgo, KeyId: id, IsLast: last}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// message assembles packets: *packet.OnePassSignature, *packet.Signature,
// literal (the body, as literal data) or raw bytes.
type literal []byte

func message(t testing.TB, parts ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		var err error
		switch p := p.(type) {
		case *packet.OnePassSignature:
			err = p.Serialize(&buf)
		case *packet.Signature:
			err = p.Serialize(&buf)
		case literal:
			var w io.WriteCloser
			if w, err = packet.SerializeLiteral(nopCloser{&buf}, true, "", 0); err == nil {
				if _, err = w.Write(p); err == nil {
					err = w.Close()
				}
			}
		case []byte:
			buf.Write(p)
		default:
			t.Fatalf("message: unknown part %T", p)
		}
		if err != nil {
			t.Fatalf("message: %v", err)
		}
	}
	return buf.Bytes()
}

// compress wraps data in a compressed-data packet.
func compress(t testing.TB, data []byte, algo packet.CompressionAlgo) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := packet.SerializeCompressed(nopCloser{&buf}, algo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedCompressed wraps data in a compressed-data packet with algorithm 0
// (stored), which go-crypto does not write.
func storedCompressed(data []byte) []byte {
	n := len(data) + 1
	out := []byte{0xC8}
	switch {
	case n < 192:
		out = append(out, byte(n))
	case n < 8384:
		out = append(out, byte((n-192)>>8+192), byte(n-192))
	default:
		out = append(out, 0xFF, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	out = append(out, 0)
	return append(out, data...)
}

func armorBlob(t testing.TB, blob []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyAcceptsForms(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "bob", "carol", "dave")
	body, _ := testPayload.Marshal()
	bob := sigPacket(t, "bob", body, nil)
	crlfBody := bytes.ReplaceAll(body, []byte("}"), []byte("}\r\n"))
	text := sigPacket(t, "carol", crlfBody, func(s *packet.Signature) { s.SigType = packet.SigTypeText })
	sha512 := sigPacket(t, "alice", body, func(s *packet.Signature) { s.Hash = crypto.SHA512 })
	lifetime := uint32(3600)
	expiring := sigPacket(t, "bob", body, func(s *packet.Signature) { s.SigLifetimeSecs = &lifetime })
	plain := message(t, opsFor(bob, true), literal(body), bob)

	tests := []struct {
		name   string
		blob   []byte
		signer string
	}{
		{"handmade", plain, "bob"},
		{"zip compressed", compress(t, plain, packet.CompressionZIP), "bob"},
		{"zlib compressed", compress(t, plain, packet.CompressionZLIB), "bob"},
		{"stored compressed", storedCompressed(plain), "bob"},
		{"text signature", message(t, opsFor(text, true), literal(crlfBody), text), "carol"},
		{"sha512", message(t, opsFor(sha512, true), literal(body), sha512), "alice"},
		{"expiring signature", message(t, opsFor(expiring, true), literal(body), expiring), "bob"},
		{"go-crypto openpgp.Sign", mustSign(t, "dave"), "dave"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := Verify(tt.blob, keys)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if sig.Signer != testkeys.Fingerprint(tt.signer) {
				t.Errorf("Signer = %s, want %s", sig.Signer, testkeys.Fingerprint(tt.signer))
			}
		})
	}
	sig, err := Verify(message(t, opsFor(expiring, true), literal(body), expiring), keys)
	if err != nil || !sig.Expires.Equal(sig.Created.Add(time.Hour)) {
		t.Errorf("expiring signature: Expires %v, Created %v, %v", sig.Expires, sig.Created, err)
	}
}

// TestVerifyRejects names every way a signature file is refused.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "bob", "carol", "dave")
	body, _ := testPayload.Marshal()
	alice := sigPacket(t, "alice", body, nil)
	bob := sigPacket(t, "bob", body, nil)
	valid := message(t, opsFor(bob, true), literal(body), bob)
	marker := []byte{0xCA, 0x03, 'P', 'G', 'P'}

	sha1 := sigPacket(t, "alice", body, func(s *packet.Signature) { s.Hash = crypto.SHA1 })
	sha3 := sigPacket(t, "alice", body, func(s *packet.Signature) { s.Hash = crypto.SHA3_256 })
	early := sigPacket(t, "bob", body, func(s *packet.Signature) { s.CreationTime = time.Unix(1000000000, 0) })
	aliceID := signingPrivateKey(t, "alice").KeyId
	wrongFpr := sigPacket(t, "bob", body, func(s *packet.Signature) { s.IssuerKeyId = &aliceID })

	// A signature by mallory, relabelled as bob's: a valid signature made
	// with another key.
	mallory, err := NewKeySigner(testkeys.Secret("mallory"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mblob, err := mallory.SignMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	mpriv := mallory.entity.PrivateKey
	bpriv := signingPrivateKey(t, "bob")
	relabelled := bytes.ReplaceAll(mblob, mpriv.Fingerprint, bpriv.Fingerprint)
	relabelled = bytes.ReplaceAll(relabelled, mpriv.Fingerprint[12:], bpriv.Fingerprint[12:])

	tampered := bytes.Replace(valid, []byte(testHex[:8]), []byte("ffffffff"), 1)
	legacyBody := []byte(`[{"critical":{"identity":{"docker-reference":"stagex/core-gcc"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"pgp container image signature"},"optional":null}]`)
	legacy := sigPacket(t, "alice", legacyBody, nil)
	badBody := []byte(`{"critical":{}}`)
	bad := sigPacket(t, "alice", badBody, nil)
	mismatchOps := opsFor(bob, true)
	mismatchOps.Hash = crypto.SHA512

	tests := []struct {
		name    string
		blob    []byte
		kind    Kind
		message string
	}{
		{"empty", nil, KindEmpty, "empty"},
		{"armored", armorBlob(t, valid), KindArmored, "ASCII-armored"},
		{"armored after whitespace", append([]byte("\n"), armorBlob(t, valid)...), KindArmored, "ASCII-armored"},
		{"text", []byte("hello"), KindGarbage, "not OpenPGP"},
		{"detached signature", message(t, bob), KindMalformed, "starts with a signature packet"},
		{"signature before literal", message(t, bob, literal(body)), KindMalformed, "starts with a signature packet"},
		{"literal only", message(t, literal(body)), KindGarbage, "not a signed message"},
		{"public key", testkeysBinary(t, "bob"), KindGarbage, "not a signed message"},
		{"old-format ops with indeterminate length", append([]byte{0x93}, valid[2:]...), KindGarbage, "not a signed message that clients recognise"},
		{"truncated after ops", valid[:15], KindTruncated, "literal data"},
		{"truncated in literal", valid[:40], KindTruncated, "ends early"},
		{"truncated in signature", valid[:len(valid)-10], KindTruncated, "ends early"},
		{"truncated compressed", compress(t, valid, packet.CompressionZIP)[:30], KindTruncated, "ends early"},
		{"missing literal data", message(t, opsFor(bob, true), bob), KindMalformed, "missing literal data"},
		{"missing signature", message(t, opsFor(bob, true), literal(body)), KindTruncated, "signature"},
		{"two signatures after the literal", message(t, opsFor(bob, true), literal(body), bob, alice), KindMalformed, "more than one signature packet"},
		{"nested one-pass signatures", message(t, opsFor(alice, false), opsFor(bob, true), literal(body), bob, alice), KindMalformed, "not the last"},
		{"two one-pass signatures both last", message(t, opsFor(alice, true), opsFor(bob, true), literal(body), bob, alice), KindMalformed, "more than one signature packet"},
		{"data after the signature", append(slicesClone(valid), 0x00, 0x01), KindMalformed, "data after the signature"},
		{"marker after the signature", append(slicesClone(valid), marker...), KindMalformed, "data after the signature"},
		{"packet after compressed data", append(compress(t, valid, packet.CompressionZLIB), marker...), KindMalformed, "after the compressed data"},
		{"nested compression", compress(t, compress(t, valid, packet.CompressionZIP), packet.CompressionZIP), KindMalformed, "nested compression"},
		{"garbage in compressed data", storedCompressed([]byte("hello")), KindMalformed, "reading the first packet in the compressed data"},
		{"one-pass and signature disagree", message(t, mismatchOps, literal(body), bob), KindMalformed, "disagree"},
		{"one-pass signature names another key", message(t, opsFor(wrongFpr, true), literal(body), wrongFpr), KindMalformed, "disagree"},
		{"sha1", message(t, opsFor(sha1, true), literal(body), sha1), KindUnsupported, "SHA-1"},
		{"sha3", message(t, opsFor(sha3, true), literal(body), sha3), KindUnsupported, "SHA3-256"},
		{"unknown signer", mustSign(t, "paula"), KindUnknownSigner, testkeys.Fingerprint("paula")},
		{"signed by another key", relabelled, KindBadSignature, "does not verify"},
		{"tampered payload", tampered, KindBadSignature, "does not verify"},
		{"signature older than the key", message(t, opsFor(early, true), literal(body), early), KindBadSignature, "before key"},
		{"legacy payload", message(t, opsFor(legacy, true), literal(legacyBody), legacy), KindLegacy, "legacy StageX"},
		{"invalid payload", message(t, opsFor(bad, true), literal(badBody), bad), KindBadPayload, "invalid signature payload"},
		{"too large", append([]byte{0xC4}, make([]byte, MaxSignatureSize)...), KindGarbage, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := Verify(tt.blob, keys)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Verify = %+v, %v; want a *Problem", sig, err)
			}
			if p.Kind != tt.kind {
				t.Errorf("kind %q (%v), want %q", p.Kind, err, tt.kind)
			}
			if !strings.Contains(p.Message, tt.message) {
				t.Errorf("message %q does not mention %q", p.Message, tt.message)
			}
			if sig.Payload != (Payload{}) && p.Kind != KindLegacy {
				t.Errorf("a refused signature has a payload: %+v", sig.Payload)
			}
		})
	}
}

// TestVerifyCertifyOnlyPrimary refuses a signature made by dave's primary
// key, which lacks the sign flag: static clients would not find the key.
func TestVerifyCertifyOnlyPrimary(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "dave")
	body, _ := testPayload.Marshal()
	dave := fixtureSigner(t, "dave")
	priv := dave.entity.PrivateKey
	keyID := priv.KeyId
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: priv.PubKeyAlgo, Hash: crypto.SHA256,
		CreationTime: time.Now(), IssuerKeyId: &keyID, IssuerFingerprint: priv.Fingerprint}
	h, _ := sig.PrepareSign(nil)
	h.Write(body)
	if err := sig.Sign(h, priv, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Verify(message(t, opsFor(sig, true), literal(body), sig), keys)
	var p *Problem
	if !errors.As(err, &p) || p.Kind != KindBadSignature || !strings.Contains(p.Message, "may not make signatures") {
		t.Fatalf("Verify = %+v, %v; want bad-signature for a certify-only primary", got, err)
	}
	if got.Signer != testkeys.Fingerprint("dave") {
		t.Errorf("Signer = %q, want dave for reporting", got.Signer)
	}
}

func TestVerifyRefusesKeysClientsCannotVerify(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]keyOptions{
		"rfc 9580 ed25519": {algo: packet.PubKeyAlgoEd25519},
		"rsa 1024":         {algo: packet.PubKeyAlgoRSA, rsaBits: 1024},
		"v6":               {algo: packet.PubKeyAlgoEd25519, v6: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEntity(t, "k", opts)
			keys, err := ReadKeyring(publicOf(t, e))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := testPayload.Marshal()
			var buf bytes.Buffer
			w, err := openpgp.Sign(&buf, e, nil, &packet.Config{DefaultHash: crypto.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(body); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = Verify(buf.Bytes(), keys)
			var p *Problem
			if !errors.As(err, &p) || p.Kind != KindUnsupported {
				t.Fatalf("Verify: %v; want unsupported", err)
			}
		})
	}
}

func TestVerifySubkeyAttributedToPrimary(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "dave", "alice")
	sig, err := Verify(mustSign(t, "dave"), keys)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Signer != testkeys.Fingerprint("dave") || !sig.Subkey || sig.Issuer == sig.Signer {
		t.Errorf("Signature = %+v, want dave's primary as signer with a subkey issuer", sig)
	}
	if _, ok := keys.Key(sig.Issuer); ok {
		t.Errorf("issuer %s is a primary key", sig.Issuer)
	}
	if valid, reason := keys.ValidAt(sig.Issuer, time.Now()); !valid {
		t.Errorf("ValidAt(subkey) = false, %s", reason)
	}
}

func TestProblemAndSignatureAreJSONData(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice")
	sig, err := Verify(mustSign(t, "alice"), keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	var back Signature
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sig, back); diff != "" {
		t.Errorf("signature JSON round trip (-want +got):\n%s", diff)
	}

	_, err = Verify([]byte("junk"), keys)
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatal(err)
	}
	b, err = json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var pback Problem
	if err := json.Unmarshal(b, &pback); err != nil {
		t.Fatal(err)
	}
	if pback.Kind != p.Kind || pback.Message != p.Message || pback.Error() != p.Error() {
		t.Errorf("problem JSON round trip: %+v, want %+v", pback, p)
	}
}

// TestResolveIssuerByKeyID covers signatures without an issuer fingerprint
// subpacket (made by GnuPG before 2.1.16), which go-crypto cannot make.
func TestResolveIssuerByKeyID(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "dave")
	daveSub := signingPrivateKey(t, "dave")
	tests := []struct {
		name       string
		id         *uint64
		candidates []string
		issuer     string
	}{
		{"primary", ptr(signingPrivateKey(t, "alice").KeyId), []string{testkeys.Fingerprint("alice")}, testkeys.Fingerprint("alice")[24:]},
		{"subkey", ptr(daveSub.KeyId), []string{fingerprintHex(daveSub.Fingerprint)}, fingerprintHex(daveSub.Fingerprint)[24:]},
		{"unknown", ptr(uint64(0x1234)), nil, "0000000000001234"},
		{"none", nil, nil, "0000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, issuer := resolveIssuer(&packet.Signature{IssuerKeyId: tt.id}, keys)
			var fprs []string
			for _, c := range got {
				fprs = append(fprs, c.fingerprint)
			}
			if diff := cmp.Diff(tt.candidates, fprs); diff != "" || issuer != tt.issuer {
				t.Errorf("candidates (-want +got):\n%s\nissuer %q, want %q", diff, issuer, tt.issuer)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func testkeysBinary(t testing.TB, name string) []byte {
	t.Helper()
	k := mustKeyring(t, name)
	var buf bytes.Buffer
	if err := k.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }
