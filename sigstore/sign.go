package sigstore

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrBadPassphrase is wrapped when a passphrase does not decrypt a secret key.
var ErrBadPassphrase = errors.New("wrong passphrase")

// Signer makes OpenPGP signatures with one key. Implementations are safe for
// concurrent use.
type Signer interface {
	// Fingerprint returns the primary-key fingerprint, uppercase hex,
	// whichever key (primary or subkey) makes the signatures.
	Fingerprint() string
	// SignMessage returns a binary OpenPGP signed message of payload holding
	// exactly one signature packet (SHA-256, v4, with the issuer
	// fingerprint): a signature file for a lookaside store. It fails, and
	// returns no data, when the key cannot sign.
	SignMessage(payload []byte) ([]byte, error)
	// SignDetached returns an ASCII-armored detached signature of data
	// (SHA-256), as git expects for signed commits and tags.
	SignDetached(data []byte) ([]byte, error)
}

// KeySigner signs with a secret key held in memory.
type KeySigner struct {
	entity      *openpgp.Entity
	fingerprint string
	signWith    string // the fingerprint of the key that signs: primary or subkey
	keyID       uint64
	subkeyOnly  bool
	warnings    []KeyIssue
}

// NewKeySigner reads one secret key (ASCII-armored or binary) and returns a
// signer for it. It signs with the primary key whenever the primary key may
// sign; otherwise with the newest valid signing subkey, and SubkeyOnly
// reports true. passphrase is called only when that key is encrypted; a
// passphrase that does not decrypt it gives an error wrapping
// ErrBadPassphrase. A key that CheckKey refuses (expired, revoked, or one
// that stock clients cannot verify) gives an error wrapping ErrKeyExpired,
// ErrKeyRevoked or ErrKeyUnsupported.
func NewKeySigner(secretKey []byte, passphrase func() ([]byte, error)) (*KeySigner, error) {
	entity, err := readSecretKey(secretKey)
	if err != nil {
		return nil, err
	}
	fpr := fingerprintHex(entity.PrimaryKey.Fingerprint)
	issues, key, subkey := checkKey(entity, time.Now(), func(pk *packet.PublicKey) bool {
		priv := privateKeyFor(entity, pk)
		return priv != nil && !priv.Dummy()
	})
	var warnings []KeyIssue
	for _, issue := range issues {
		if issue.Refuse {
			return nil, fmt.Errorf("loading secret key: %w", issue)
		}
		warnings = append(warnings, issue)
	}
	priv := privateKeyFor(entity, key)
	if priv.Encrypted {
		if passphrase == nil {
			return nil, fmt.Errorf("loading secret key %s: the key is encrypted and no passphrase was given", fpr)
		}
		pass, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("loading secret key %s: reading passphrase: %w", fpr, err)
		}
		if err := priv.Decrypt(pass); err != nil {
			return nil, fmt.Errorf("loading secret key %s: %w (%v)", fpr, ErrBadPassphrase, err)
		}
	}
	return &KeySigner{
		entity:      entity,
		fingerprint: fpr,
		signWith:    fingerprintHex(key.Fingerprint),
		keyID:       key.KeyId,
		subkeyOnly:  subkey,
		warnings:    warnings,
	}, nil
}

// readSecretKey reads exactly one key with secret material.
func readSecretKey(data []byte) (*openpgp.Entity, error) {
	chunks, err := dearmorKeys(data, openpgp.PrivateKeyType)
	if err != nil {
		return nil, fmt.Errorf("reading secret key: %w", err)
	}
	var list openpgp.EntityList
	for _, chunk := range chunks {
		keys, err := openpgp.ReadKeyRing(bytes.NewReader(chunk))
		if err != nil {
			return nil, fmt.Errorf("reading secret key: %w", err)
		}
		list = append(list, keys...)
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("reading secret key: found %d keys, want exactly one", len(list))
	}
	if !hasSecretMaterial(list[0]) {
		return nil, fmt.Errorf("reading secret key: %s is a public key only", fingerprintHex(list[0].PrimaryKey.Fingerprint))
	}
	return list[0], nil
}

// privateKeyFor returns the secret part of pk in e, or nil.
func privateKeyFor(e *openpgp.Entity, pk *packet.PublicKey) *packet.PrivateKey {
	if pk == e.PrimaryKey {
		return e.PrivateKey
	}
	for _, sub := range e.Subkeys {
		if sub.PublicKey == pk {
			return sub.PrivateKey
		}
	}
	return nil
}

// Fingerprint implements Signer.
func (s *KeySigner) Fingerprint() string { return s.fingerprint }

// SigningKey returns the fingerprint of the key that makes the signatures:
// the primary key's, or the signing subkey's.
func (s *KeySigner) SigningKey() string { return s.signWith }

// SubkeyOnly reports whether the signatures are made by a subkey because the
// primary key may not sign (containers/image before 5.37 rejects them).
func (s *KeySigner) SubkeyOnly() bool { return s.subkeyOnly }

// Warnings returns CheckKey's warnings for the key: clients that will not
// verify its signatures.
func (s *KeySigner) Warnings() []KeyIssue { return s.warnings }

// config pins the signing key and the hash: go-crypto would otherwise pick
// the newest signing subkey by itself.
func (s *KeySigner) config() *packet.Config {
	return &packet.Config{DefaultHash: crypto.SHA256, SigningKeyId: s.keyID}
}

// SignMessage implements Signer with go-crypto's openpgp.Sign: one-pass
// signature, literal data and one signature packet, uncompressed.
func (s *KeySigner) SignMessage(payload []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, s.entity, &openpgp.FileHints{IsBinary: true}, s.config())
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	if _, err := w.Write(payload); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	if err := checkMadeMessage(buf.Bytes(), payload, s.keyID); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	return buf.Bytes(), nil
}

// SignDetached implements Signer.
func (s *KeySigner) SignDetached(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, s.entity, bytes.NewReader(data), s.config()); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", s.fingerprint, err)
	}
	return buf.Bytes(), nil
}

// checkMadeMessage checks a freshly made signed message: the form Verify
// accepts, over payload, by the key with keyID, with SHA-256. It guards
// against a signer (a gpg configuration, a key's hash preferences) that
// produced something else.
func checkMadeMessage(blob, payload []byte, keyID uint64) error {
	msg, prob := readSignedMessage(blob)
	if prob != nil {
		return fmt.Errorf("the signer produced an unusable message: %w", prob)
	}
	switch {
	case !bytes.Equal(msg.body, payload):
		return errors.New("the signed message does not hold the payload")
	case msg.ops.KeyId != keyID:
		return fmt.Errorf("the message was signed by key %016X, not %016X", msg.ops.KeyId, keyID)
	case msg.sig.Hash != crypto.SHA256:
		return fmt.Errorf("the signature uses %s, not SHA-256", hashName(msg.sig.Hash))
	case msg.sig.IssuerFingerprint == nil:
		return errors.New("the signature lacks the issuer fingerprint")
	}
	return nil
}
