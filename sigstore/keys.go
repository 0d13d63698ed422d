package sigstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrSecretKey is wrapped by ReadKeyring's error when it is given secret-key
// material where public keys are expected.
var ErrSecretKey = errors.New("secret key material where public keys are expected")

// Key names one public key of a Keyring.
type Key struct {
	// Fingerprint is the primary-key fingerprint, uppercase hex.
	Fingerprint string `json:"fingerprint"`
	// Name is the primary user ID, "" when the key has none.
	Name string `json:"name"`
}

// Keyring is an immutable set of OpenPGP public keys indexed by primary
// fingerprint, and by the fingerprints and key IDs of their primary keys and
// subkeys, so that a signature's issuer resolves to its primary key. It is
// safe for concurrent use.
type Keyring struct {
	entities []*openpgp.Entity // sorted by primary fingerprint
	primary  map[string]*openpgp.Entity
	byFpr    map[string]*signingKey // primary and subkey fingerprints
	byKeyID  map[uint64][]*signingKey
	id       string
}

// signingKey is one key (primary or subkey) of a keyring entity.
type signingKey struct {
	entity      *openpgp.Entity
	public      *packet.PublicKey
	subkey      *openpgp.Subkey // nil for the primary key
	fingerprint string          // of this key, uppercase hex
	primaryFpr  string
}

// MaxKeyringSize bounds a keyring: a few maintainers' public keys take a
// few kilobytes each, so 4 MiB leaves room for hundreds of keys with their
// certifications, and nothing anywhere near what would make reading it slow.
const MaxKeyringSize = 4 << 20

// ReadKeyring reads OpenPGP public keys, binary or ASCII-armored (one or
// more armor blocks), one key or several. It refuses secret-key material
// (ErrSecretKey), the same key given twice, a subkey bound to two keys, and
// any key it cannot read: nothing is skipped silently. A keyring larger
// than MaxKeyringSize is refused unread.
func ReadKeyring(data []byte) (*Keyring, error) {
	if len(data) > MaxKeyringSize {
		return nil, fmt.Errorf("reading keyring: %d bytes, more than the %d a keyring may have", len(data), MaxKeyringSize)
	}
	chunks, err := dearmorKeys(data, openpgp.PublicKeyType)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	var entities []*openpgp.Entity
	for _, chunk := range chunks {
		packets := packet.NewReader(bytes.NewReader(chunk))
		for {
			e, err := openpgp.ReadEntity(packets)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading keyring: key %d: %w", len(entities)+1, err)
			}
			entities = append(entities, e)
		}
	}
	if len(entities) == 0 {
		return nil, errors.New("reading keyring: no keys found")
	}
	return newKeyring(entities)
}

// dearmorKeys returns the binary key data in data: data itself when it is
// binary, else the decoded contents of each armor block, which must all be
// of blockType.
func dearmorKeys(data []byte, blockType string) ([][]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("no keys found")
	}
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		if trimmed[0]&0x80 == 0 {
			return nil, fmt.Errorf("neither binary OpenPGP data nor an armored key block (starts with %q)", firstLine(trimmed))
		}
		return [][]byte{data}, nil
	}
	var chunks [][]byte
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, len(data)+1)
	var block bytes.Buffer
	inBlock := false
	lineNo := 0
	for scanner.Scan() {
		lineNo++
		line := strings.TrimRight(scanner.Text(), " \t\r")
		switch {
		case !inBlock && line == "":
		case !inBlock && strings.HasPrefix(line, "-----BEGIN "):
			inBlock = true
			block.Reset()
			block.WriteString(line + "\n")
		case !inBlock:
			return nil, fmt.Errorf("line %d: text outside an armor block", lineNo)
		default:
			block.WriteString(line + "\n")
			if strings.HasPrefix(line, "-----END ") {
				inBlock = false
				chunk, err := decodeKeyBlock(block.Bytes(), blockType)
				if err != nil {
					return nil, fmt.Errorf("armor block ending on line %d: %w", lineNo, err)
				}
				chunks = append(chunks, chunk)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	if inBlock {
		return nil, errors.New("armor block has no END line")
	}
	return chunks, nil
}

func decodeKeyBlock(text []byte, blockType string) ([]byte, error) {
	block, err := armor.Decode(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("decoding armor: %w", err)
	}
	switch block.Type {
	case blockType:
	case openpgp.PrivateKeyType:
		return nil, fmt.Errorf("%w: a %q block (export public keys with gpg --export)", ErrSecretKey, block.Type)
	default:
		return nil, fmt.Errorf("armor block is a %q, not a %q", block.Type, blockType)
	}
	b, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("decoding armor: %w", err)
	}
	return b, nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 40 {
		line = line[:40]
	}
	return string(line)
}

func newKeyring(entities []*openpgp.Entity) (*Keyring, error) {
	k := &Keyring{
		primary: map[string]*openpgp.Entity{},
		byFpr:   map[string]*signingKey{},
		byKeyID: map[uint64][]*signingKey{},
	}
	add := func(sk *signingKey) error {
		if other, dup := k.byFpr[sk.fingerprint]; dup {
			if sk.subkey == nil && other.subkey == nil {
				return fmt.Errorf("key %s is given twice", sk.fingerprint)
			}
			return fmt.Errorf("key %s appears both in %s and in %s: its signatures could not be attributed", sk.fingerprint, other.primaryFpr, sk.primaryFpr)
		}
		k.byFpr[sk.fingerprint] = sk
		k.byKeyID[sk.public.KeyId] = append(k.byKeyID[sk.public.KeyId], sk)
		return nil
	}
	for _, e := range entities {
		fpr := fingerprintHex(e.PrimaryKey.Fingerprint)
		if hasSecretMaterial(e) {
			return nil, fmt.Errorf("reading keyring: key %s: %w (export public keys with gpg --export)", fpr, ErrSecretKey)
		}
		if err := add(&signingKey{entity: e, public: e.PrimaryKey, fingerprint: fpr, primaryFpr: fpr}); err != nil {
			return nil, fmt.Errorf("reading keyring: %w", err)
		}
		k.primary[fpr] = e
		for i := range e.Subkeys {
			sub := &e.Subkeys[i]
			sk := &signingKey{entity: e, public: sub.PublicKey, subkey: sub, fingerprint: fingerprintHex(sub.PublicKey.Fingerprint), primaryFpr: fpr}
			if err := add(sk); err != nil {
				return nil, fmt.Errorf("reading keyring: %w", err)
			}
		}
		k.entities = append(k.entities, e)
	}
	slices.SortFunc(k.entities, func(a, b *openpgp.Entity) int {
		return strings.Compare(fingerprintHex(a.PrimaryKey.Fingerprint), fingerprintHex(b.PrimaryKey.Fingerprint))
	})
	h := sha256.New()
	if err := k.Serialize(h); err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	k.id = hex.EncodeToString(h.Sum(nil))
	return k, nil
}

func hasSecretMaterial(e *openpgp.Entity) bool {
	if e.PrivateKey != nil {
		return true
	}
	for _, sub := range e.Subkeys {
		if sub.PrivateKey != nil {
			return true
		}
	}
	return false
}

func fingerprintHex(fpr []byte) string {
	return strings.ToUpper(hex.EncodeToString(fpr))
}

// normalizeFingerprint accepts a fingerprint in either case, with or without
// spaces, and returns it in uppercase hex.
func normalizeFingerprint(fpr string) string {
	return strings.ToUpper(strings.ReplaceAll(fpr, " ", ""))
}

// Keys returns the keys of the keyring, sorted by fingerprint.
func (k *Keyring) Keys() []Key {
	keys := make([]Key, 0, len(k.entities))
	for _, e := range k.entities {
		keys = append(keys, entityKey(e))
	}
	return keys
}

func entityKey(e *openpgp.Entity) Key {
	key := Key{Fingerprint: fingerprintHex(e.PrimaryKey.Fingerprint)}
	if id := e.PrimaryIdentity(); id != nil {
		key.Name = id.Name
	}
	return key
}

// Key returns the key with the given primary fingerprint (any case).
func (k *Keyring) Key(fingerprint string) (Key, bool) {
	e, ok := k.primary[normalizeFingerprint(fingerprint)]
	if !ok {
		return Key{}, false
	}
	return entityKey(e), true
}

// Entity returns the go-crypto entity of the key with the given primary
// fingerprint, for CheckKey and for callers that need the key itself.
// The entity is shared: do not modify it.
func (k *Keyring) Entity(fingerprint string) (*openpgp.Entity, bool) {
	e, ok := k.primary[normalizeFingerprint(fingerprint)]
	return e, ok
}

// Select returns the keyring of the keys with the given primary
// fingerprints (any case), and the fingerprints it does not hold, in the
// order given. With none found it returns a nil keyring.
func (k *Keyring) Select(fingerprints []string) (*Keyring, []string, error) {
	var picked []*openpgp.Entity
	var missing []string
	taken := map[string]bool{}
	for _, f := range fingerprints {
		n := normalizeFingerprint(f)
		e, ok := k.primary[n]
		switch {
		case !ok:
			missing = append(missing, n)
		case !taken[n]:
			taken[n] = true
			picked = append(picked, e)
		}
	}
	if len(picked) == 0 {
		return nil, missing, nil
	}
	sub, err := newKeyring(picked)
	return sub, missing, err
}

// Serialize writes the keyring as binary OpenPGP public keys, sorted by
// fingerprint: the form of StageX's stagex-keyring.pgp.
func (k *Keyring) Serialize(w io.Writer) error {
	for _, e := range k.entities {
		if err := e.Serialize(w); err != nil {
			return fmt.Errorf("serializing key %s: %w", fingerprintHex(e.PrimaryKey.Fingerprint), err)
		}
	}
	return nil
}

// ID identifies the keyring's content for caches: the hex SHA-256 of its
// serialization, which covers the sorted fingerprints and all key material
// (a new revocation or subkey changes it).
func (k *Keyring) ID() string { return k.id }

// Check runs CheckKey on every key of the keyring at time now, in
// fingerprint order.
func (k *Keyring) Check(now time.Time) []KeyIssue {
	var issues []KeyIssue
	for _, e := range k.entities {
		issues = append(issues, CheckKey(e, now)...)
	}
	return issues
}

// ErrUnknownKey is wrapped by Resolve's error for an issuer that is not in
// the keyring.
var ErrUnknownKey = errors.New("key not in the keyring")

// Resolve finds the primary key of an issuer: a fingerprint (of a primary
// key or a subkey) or a 16-hex key ID, in either case. subkey reports
// whether the issuer is a subkey of the returned key. A key ID that two
// keys share is an error: only a fingerprint identifies a key.
func (k *Keyring) Resolve(issuer string) (key Key, subkey bool, err error) {
	id := normalizeFingerprint(issuer)
	id = strings.TrimPrefix(id, "0X")
	var sk *signingKey
	switch len(id) {
	case 40, 64:
		sk = k.byFpr[id]
	case 16:
		keyID, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			return Key{}, false, fmt.Errorf("resolving issuer %q: not hex", issuer)
		}
		switch matches := k.byKeyID[keyID]; len(matches) {
		case 0:
		case 1:
			sk = matches[0]
		default:
			return Key{}, false, fmt.Errorf("resolving issuer %q: key ID shared by %d keys; give the fingerprint", issuer, len(matches))
		}
	default:
		return Key{}, false, fmt.Errorf("resolving issuer %q: neither a fingerprint nor a 16-hex key ID", issuer)
	}
	if sk == nil {
		return Key{}, false, fmt.Errorf("resolving issuer %q: %w", issuer, ErrUnknownKey)
	}
	return entityKey(sk.entity), sk.subkey != nil, nil
}

// lookupFingerprint returns the key (primary or subkey) with this
// fingerprint.
func (k *Keyring) lookupFingerprint(fpr []byte) (*signingKey, bool) {
	sk, ok := k.byFpr[fingerprintHex(fpr)]
	return sk, ok
}

// lookupKeyID returns the keys (primary or subkeys) with this key ID.
func (k *Keyring) lookupKeyID(id uint64) []*signingKey {
	return k.byKeyID[id]
}

// ValidAt judges the lifetime of the key with this fingerprint (a primary
// key or one of its subkeys, any case) for a signature that first entered
// the signatures repository at time t. An expired key counts for signatures
// that entered before it expired; a soft revocation (key superseded or
// retired) only for those that entered before the revocation; a hard
// revocation (key compromised, no reason, an unknown reason) for none.
// A subkey is judged together with its primary key. reason explains a false
// result, and notes a revocation or expiry that did not matter; it is ""
// for a key with neither.
func (k *Keyring) ValidAt(fingerprint string, t time.Time) (valid bool, reason string) {
	return k.validAt(fingerprint, t, "the signature entered")
}

// validAt is ValidAt, where event names what happened at t in reasons
// ("the signature entered"; "" leaves it out).
func (k *Keyring) validAt(fingerprint string, t time.Time, event string) (valid bool, reason string) {
	sk, ok := k.byFpr[normalizeFingerprint(fingerprint)]
	if !ok {
		return false, fmt.Sprintf("key %s is not in the keyring", normalizeFingerprint(fingerprint))
	}
	e := sk.entity
	selfSig, _ := e.PrimarySelfSignature()
	if selfSig == nil {
		return false, fmt.Sprintf("key %s has no valid self-signature", sk.primaryFpr)
	}
	valid, reason = lifetimeAt("key "+sk.primaryFpr, e.PrimaryKey, selfSig, e.Revocations, t, event)
	if !valid || sk.subkey == nil {
		return valid, reason
	}
	subValid, subReason := lifetimeAt("subkey "+sk.fingerprint, sk.public, sk.subkey.Sig, sk.subkey.Revocations, t, event)
	return subValid, joinReasons(reason, subReason)
}

// CanSign refuses a key whose new signatures would not count: the key with
// this fingerprint (a primary key or a subkey), or its primary key, is
// revoked, expired or not valid yet at now. The error names which key and
// since when, and wraps ErrKeyRevoked or ErrKeyExpired.
func (k *Keyring) CanSign(fingerprint string, now time.Time) error {
	sk, ok := k.byFpr[normalizeFingerprint(fingerprint)]
	if !ok {
		return fmt.Errorf("key %s is not in the keyring", normalizeFingerprint(fingerprint))
	}
	e := sk.entity
	selfSig, _ := e.PrimarySelfSignature()
	if err := canSignAt("key "+sk.primaryFpr, e.PrimaryKey, selfSig, e.Revocations, now); err != nil {
		return err
	}
	if sk.subkey != nil {
		return canSignAt("subkey "+sk.fingerprint+" of key "+sk.primaryFpr, sk.public, sk.subkey.Sig, sk.subkey.Revocations, now)
	}
	return nil
}

func canSignAt(what string, pk *packet.PublicKey, binding *packet.Signature, revocations []*packet.Signature, now time.Time) error {
	for _, rev := range revocations {
		if hardRevocation(rev) || !now.Before(rev.CreationTime) {
			return &keyStateError{fmt.Sprintf("%s was revoked on %s (%s)", what, stamp(rev.CreationTime), revocationReason(rev)), ErrKeyRevoked}
		}
	}
	if expiry, ok := keyExpiry(pk, binding); ok && !now.Before(expiry) {
		return &keyStateError{fmt.Sprintf("%s expired on %s", what, stamp(expiry)), ErrKeyExpired}
	}
	if now.Before(pk.CreationTime) {
		return &keyStateError{fmt.Sprintf("%s was created on %s, after now (%s)", what, stamp(pk.CreationTime), stamp(now)), ErrKeyExpired}
	}
	return nil
}

// keyStateError says why a key cannot sign; it wraps ErrKeyRevoked or
// ErrKeyExpired without repeating them.
type keyStateError struct {
	msg string
	err error
}

func (e *keyStateError) Error() string { return e.msg }
func (e *keyStateError) Unwrap() error { return e.err }

func joinReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// lifetimeAt judges one key against its binding (self-)signature and
// revocations at time t, when event happened ("" leaves it out of reasons).
func lifetimeAt(what string, pk *packet.PublicKey, binding *packet.Signature, revocations []*packet.Signature, t time.Time, event string) (bool, string) {
	before, after, createdAfter := "", "", ""
	if event != "" {
		before = fmt.Sprintf(", before %s (%s)", event, stamp(t))
		after = ", after " + event
		createdAfter = fmt.Sprintf(", after %s (%s)", event, stamp(t))
	}
	if t.Before(pk.CreationTime) {
		return false, fmt.Sprintf("%s was created on %s%s", what, stamp(pk.CreationTime), createdAfter)
	}
	var notes []string
	for _, rev := range revocations {
		if hardRevocation(rev) {
			return false, fmt.Sprintf("%s was revoked on %s (%s): a hard revocation invalidates every signature", what, stamp(rev.CreationTime), revocationReason(rev))
		}
		if !t.Before(rev.CreationTime) {
			return false, fmt.Sprintf("%s was revoked on %s (%s)%s", what, stamp(rev.CreationTime), revocationReason(rev), before)
		}
		notes = append(notes, fmt.Sprintf("%s was revoked on %s (%s)%s", what, stamp(rev.CreationTime), revocationReason(rev), after))
	}
	if expiry, ok := keyExpiry(pk, binding); ok {
		if !t.Before(expiry) {
			return false, fmt.Sprintf("%s expired on %s%s", what, stamp(expiry), before)
		}
		notes = append(notes, fmt.Sprintf("%s expires on %s%s", what, stamp(expiry), after))
	}
	return true, strings.Join(notes, "; ")
}

// keyExpiry returns when pk expires according to its binding signature.
func keyExpiry(pk *packet.PublicKey, binding *packet.Signature) (time.Time, bool) {
	if binding == nil || binding.KeyLifetimeSecs == nil || *binding.KeyLifetimeSecs == 0 {
		return time.Time{}, false
	}
	return pk.CreationTime.Add(time.Duration(*binding.KeyLifetimeSecs) * time.Second), true
}

// hardRevocation reports whether a revocation invalidates every signature
// ever made by the key: all but "superseded" and "retired".
func hardRevocation(rev *packet.Signature) bool {
	if rev.RevocationReason == nil {
		return true
	}
	switch *rev.RevocationReason {
	case packet.KeySuperseded, packet.KeyRetired:
		return false
	}
	return true
}

func revocationReason(rev *packet.Signature) string {
	var reason string
	switch {
	case rev.RevocationReason == nil:
		reason = "no reason given"
	case *rev.RevocationReason == packet.NoReason:
		reason = "no reason specified"
	case *rev.RevocationReason == packet.KeySuperseded:
		reason = "key superseded"
	case *rev.RevocationReason == packet.KeyCompromised:
		reason = "key compromised"
	case *rev.RevocationReason == packet.KeyRetired:
		reason = "key retired"
	default:
		reason = fmt.Sprintf("reason code %d", *rev.RevocationReason)
	}
	if rev.RevocationReasonText != "" {
		reason += fmt.Sprintf(": %q", rev.RevocationReasonText)
	}
	return reason
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
