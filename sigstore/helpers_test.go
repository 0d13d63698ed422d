package sigstore

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/internal/testkeys"
)

// signerNames are the fixture keys that can sign, in a fixed order.
var signerNames = []string{"alice", "bob", "carol", "dave", "paula"}

// testPayload is a valid payload for digest testDigest.
var testPayload = Payload{Reference: "stagex/core-gcc:14.2.0", Digest: testDigest}

func publicKeys(names ...string) []byte {
	var all []byte
	for _, n := range names {
		all = append(all, testkeys.Public(n)...)
	}
	return all
}

// mustKeyring reads the public keys of the named fixtures.
func mustKeyring(t testing.TB, names ...string) *Keyring {
	t.Helper()
	k, err := ReadKeyring(publicKeys(names...))
	if err != nil {
		t.Fatalf("ReadKeyring(%v): %v", names, err)
	}
	return k
}

var (
	signersMu sync.Mutex
	signers   = map[string]*KeySigner{}
)

// fixtureSigner returns a KeySigner for a fixture key, made once: paula's
// passphrase takes a noticeable time to stretch.
func fixtureSigner(t testing.TB, name string) *KeySigner {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if s, ok := signers[name]; ok {
		return s
	}
	s, err := NewKeySigner(testkeys.Secret(name), func() ([]byte, error) { return []byte(testkeys.Passphrase), nil })
	if err != nil {
		t.Fatalf("NewKeySigner(%s): %v", name, err)
	}
	signers[name] = s
	return s
}

// mustSign signs testPayload (or payload, when given) with a fixture key.
func mustSign(t testing.TB, name string, payload ...Payload) []byte {
	t.Helper()
	p := testPayload
	if len(payload) > 0 {
		p = payload[0]
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := fixtureSigner(t, name).SignMessage(data)
	if err != nil {
		t.Fatalf("SignMessage(%s): %v", name, err)
	}
	return blob
}

// keyOptions describes a key generated in a test.
type keyOptions struct {
	created  time.Time     // zero: now
	lifetime time.Duration // 0: does not expire
	algo     packet.PublicKeyAlgorithm
	rsaBits  int
	v6       bool
}

// newEntity generates a key with go-crypto: properties the fixtures lack.
func newEntity(t testing.TB, name string, opts keyOptions) *openpgp.Entity {
	t.Helper()
	created := opts.created
	if created.IsZero() {
		created = time.Now()
	}
	cfg := &packet.Config{
		Algorithm:       opts.algo,
		RSABits:         opts.rsaBits,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: uint32(opts.lifetime / time.Second),
		V6Keys:          opts.v6,
		DefaultHash:     0,
	}
	if cfg.Algorithm == 0 {
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
	}
	e, err := openpgp.NewEntity(name, "tally TEST KEY, not secret", name+"@example.invalid", cfg)
	if err != nil {
		t.Fatalf("generating key %s: %v", name, err)
	}
	return e
}

// publicOf serialises the public part of e.
func publicOf(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatalf("serialising public key: %v", err)
	}
	return buf.Bytes()
}

// secretOf serialises e with its secret parts.
func secretOf(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.SerializePrivateWithoutSigning(&buf, nil); err != nil {
		t.Fatalf("serialising secret key: %v", err)
	}
	return buf.Bytes()
}

// revoke adds a key revocation with reason to e, made at time at.
func revoke(t testing.TB, e *openpgp.Entity, reason packet.ReasonForRevocation, at time.Time) {
	t.Helper()
	cfg := &packet.Config{Time: func() time.Time { return at }}
	if err := e.RevokeKey(reason, "test revocation", cfg); err != nil {
		t.Fatalf("revoking key: %v", err)
	}
}
