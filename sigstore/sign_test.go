package sigstore

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/internal/testkeys"
)

func TestSignVerifyFixtures(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "bob", "carol", "dave", "paula", "mallory")
	for _, name := range signerNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			signer := fixtureSigner(t, name)
			if signer.Fingerprint() != testkeys.Fingerprint(name) {
				t.Errorf("Fingerprint() = %s, want %s", signer.Fingerprint(), testkeys.Fingerprint(name))
			}
			wantSubkey := name == "dave"
			if signer.SubkeyOnly() != wantSubkey {
				t.Errorf("SubkeyOnly() = %v, want %v", signer.SubkeyOnly(), wantSubkey)
			}
			before := time.Now().Add(-time.Second)
			blob := mustSign(t, name)

			sig, err := Verify(blob, keys)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(testPayload, sig.Payload); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			if sig.Signer != testkeys.Fingerprint(name) {
				t.Errorf("Signer = %s, want %s", sig.Signer, testkeys.Fingerprint(name))
			}
			if sig.Subkey != wantSubkey {
				t.Errorf("Subkey = %v, want %v", sig.Subkey, wantSubkey)
			}
			if wantSubkey == (sig.Issuer == sig.Signer) {
				t.Errorf("Issuer = %s with Signer %s and Subkey %v", sig.Issuer, sig.Signer, sig.Subkey)
			}
			if sig.Created.Before(before) || sig.Created.After(time.Now().Add(time.Second)) || !sig.Expires.IsZero() {
				t.Errorf("Created = %v, Expires = %v", sig.Created, sig.Expires)
			}

			// The message is exactly one-pass signature, literal data,
			// signature: v4, SHA-256, with the issuer fingerprint.
			msg, prob := readSignedMessage(blob)
			if prob != nil {
				t.Fatal(prob)
			}
			if msg.sig.Version != 4 || msg.sig.Hash != crypto.SHA256 || msg.sig.IssuerFingerprint == nil {
				t.Errorf("signature v%d, %v, issuer fingerprint %X", msg.sig.Version, msg.sig.Hash, msg.sig.IssuerFingerprint)
			}
			if blob[0] != 0xC4 {
				t.Errorf("first byte %#x, want a one-pass signature packet (0xc4)", blob[0])
			}
		})
	}
}

func TestSignDetachedVerifies(t *testing.T) {
	t.Parallel()
	data := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@example.invalid> 0 +0000\n\nmessage\n")
	for _, name := range signerNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			signer := fixtureSigner(t, name)
			armored, err := signer.SignDetached(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(armored, []byte("-----BEGIN PGP SIGNATURE-----")) {
				t.Fatalf("not an armored signature:\n%s", armored)
			}
			ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Public(name)))
			if err != nil {
				t.Fatal(err)
			}
			signerKey, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(data), bytes.NewReader(armored), nil)
			if err != nil {
				t.Fatalf("checking detached signature: %v", err)
			}
			if got := fingerprintHex(signerKey.PrimaryKey.Fingerprint); got != testkeys.Fingerprint(name) {
				t.Errorf("signed by %s", got)
			}
			block, err := armor.Decode(bytes.NewReader(armored))
			if err != nil {
				t.Fatal(err)
			}
			p, err := packet.Read(block.Body)
			if err != nil {
				t.Fatal(err)
			}
			sig := p.(*packet.Signature)
			if sig.Hash != crypto.SHA256 || sig.Version != 4 || sig.IssuerFingerprint == nil {
				t.Errorf("detached signature v%d, %v, issuer fingerprint %X", sig.Version, sig.Hash, sig.IssuerFingerprint)
			}
			if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(append(data, 'x')), bytes.NewReader(armored), nil); err == nil {
				t.Error("detached signature verifies over other data")
			}
		})
	}
}

func TestNewKeySignerPassphrase(t *testing.T) {
	t.Parallel()
	t.Run("called only for an encrypted key", func(t *testing.T) {
		t.Parallel()
		called := false
		if _, err := NewKeySigner(testkeys.Secret("alice"), func() ([]byte, error) { called = true; return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if called {
			t.Error("passphrase callback called for a key without passphrase")
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		t.Parallel()
		_, err := NewKeySigner(testkeys.Secret("paula"), func() ([]byte, error) { return []byte("not it"), nil })
		if !errors.Is(err, ErrBadPassphrase) {
			t.Errorf("error %v, want ErrBadPassphrase", err)
		}
	})
	t.Run("no callback", func(t *testing.T) {
		t.Parallel()
		if _, err := NewKeySigner(testkeys.Secret("paula"), nil); err == nil || !strings.Contains(err.Error(), "encrypted") {
			t.Errorf("error %v, want one saying the key is encrypted", err)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("no terminal")
		if _, err := NewKeySigner(testkeys.Secret("paula"), func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("error %v, want the callback's error", err)
		}
	})
}

func TestNewKeySignerRefuses(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-48 * time.Hour)
	expired := newEntity(t, "expired", keyOptions{created: past, lifetime: time.Hour})
	revoked := newEntity(t, "revoked", keyOptions{created: past})
	revoke(t, revoked, packet.KeySuperseded, past.Add(time.Hour))
	compromised := newEntity(t, "compromised", keyOptions{})
	revoke(t, compromised, packet.KeyCompromised, time.Now().Add(time.Hour))
	v6 := newEntity(t, "v6", keyOptions{v6: true, algo: packet.PubKeyAlgoEd25519})
	ed25519 := newEntity(t, "ed25519", keyOptions{algo: packet.PubKeyAlgoEd25519})
	rsa1024 := newEntity(t, "rsa1024", keyOptions{algo: packet.PubKeyAlgoRSA, rsaBits: 1024})

	tests := []struct {
		name string
		key  []byte
		want error
	}{
		{"expired", secretOf(t, expired), ErrKeyExpired},
		{"revoked superseded", secretOf(t, revoked), ErrKeyRevoked},
		{"compromised, dated in the future", secretOf(t, compromised), ErrKeyRevoked},
		{"v6 key", secretOf(t, v6), ErrKeyUnsupported},
		{"rfc 9580 ed25519", secretOf(t, ed25519), ErrKeyUnsupported},
		{"rsa 1024", secretOf(t, rsa1024), ErrKeyUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewKeySigner(tt.key, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewKeySigner = %v, %v; want error wrapping %v", s, err, tt.want)
			}
		})
	}
	for name, data := range map[string][]byte{
		"public key":   testkeys.Public("alice"),
		"two keys":     append(testkeys.Secret("alice"), testkeys.Secret("bob")...),
		"garbage":      []byte("not a key"),
		"empty":        nil,
		"armored junk": []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if s, err := NewKeySigner(data, nil); err == nil {
				t.Errorf("NewKeySigner accepted it: %+v", s)
			}
		})
	}
}

// TestKeySignerPrefersPrimary checks the primary key signs even when the key
// has a newer signing subkey, which go-crypto would pick by itself.
func TestKeySignerPrefersPrimary(t *testing.T) {
	t.Parallel()
	e := newEntity(t, "both", keyOptions{created: time.Now().Add(-time.Hour)})
	if err := e.AddSigningSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}); err != nil {
		t.Fatal(err)
	}
	signer, err := NewKeySigner(secretOf(t, e), nil)
	if err != nil {
		t.Fatal(err)
	}
	if signer.SubkeyOnly() {
		t.Error("SubkeyOnly() = true for a key whose primary key may sign")
	}
	data, _ := testPayload.Marshal()
	blob, err := signer.SignMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyring(publicOf(t, e))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Verify(blob, keys)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Subkey || sig.Issuer != sig.Signer {
		t.Errorf("signed by %s (subkey %v), want the primary key %s", sig.Issuer, sig.Subkey, sig.Signer)
	}
	detached, err := signer.SignDetached(data)
	if err != nil {
		t.Fatal(err)
	}
	block, err := armor.Decode(bytes.NewReader(detached))
	if err != nil {
		t.Fatal(err)
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprintHex(p.(*packet.Signature).IssuerFingerprint); got != sig.Signer {
		t.Errorf("detached signature issued by %s, want the primary key %s", got, sig.Signer)
	}
}

func TestKeySignerWarnings(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"alice": "",
		"carol": "",
		"bob":   "legacy EdDSA",
		"dave":  "reject signatures made by subkeys",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var reasons []string
			for _, w := range fixtureSigner(t, name).Warnings() {
				if w.Refuse || w.Fingerprint != testkeys.Fingerprint(name) {
					t.Errorf("warning %+v", w)
				}
				reasons = append(reasons, w.Reason)
			}
			all := strings.Join(reasons, "\n")
			if (want == "") != (all == "") || !strings.Contains(all, want) {
				t.Errorf("warnings %q, want one mentioning %q", all, want)
			}
		})
	}
}

func TestKeySignerConcurrentUse(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "bob", "dave")
	payload, _ := testPayload.Marshal()
	for _, name := range []string{"bob", "dave"} {
		signer := fixtureSigner(t, name)
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				blob, err := signer.SignMessage(payload)
				if err == nil {
					_, err = Verify(blob, keys)
				}
				if err == nil {
					_, err = signer.SignDetached(payload)
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
