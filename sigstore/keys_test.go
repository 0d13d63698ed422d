package sigstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/internal/testkeys"
)

func TestReadKeyring(t *testing.T) {
	t.Parallel()
	all := []string{"alice", "bob", "carol", "dave", "mallory", "paula"}
	armored := publicKeys(all...)
	var binary bytes.Buffer
	if err := mustKeyring(t, all...).Serialize(&binary); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"armored blocks":         armored,
		"binary":                 binary.Bytes(),
		"armored with CRLF":      bytes.ReplaceAll(armored, []byte("\n"), []byte("\r\n")),
		"armored with blank gap": bytes.ReplaceAll(armored, []byte("-----\n-----BEGIN"), []byte("-----\n\n\n-----BEGIN")),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, err := ReadKeyring(data)
			if err != nil {
				t.Fatal(err)
			}
			got := k.Keys()
			if len(got) != len(all) {
				t.Fatalf("read %d keys, want %d", len(got), len(all))
			}
			for i := 1; i < len(got); i++ {
				if got[i-1].Fingerprint >= got[i].Fingerprint {
					t.Errorf("Keys() not sorted: %s before %s", got[i-1].Fingerprint, got[i].Fingerprint)
				}
			}
			for _, n := range all {
				key, ok := k.Key(strings.ToLower(testkeys.Fingerprint(n)))
				if !ok || key.Fingerprint != testkeys.Fingerprint(n) || !strings.Contains(key.Name, n) || !strings.Contains(key.Name, "TEST KEY") {
					t.Errorf("Key(%s) = %+v, %v", n, key, ok)
				}
			}
			if k.ID() != mustKeyring(t, all...).ID() {
				t.Errorf("ID() depends on the input form")
			}
		})
	}
}

func TestKeyringIDAndSerialize(t *testing.T) {
	t.Parallel()
	ab := mustKeyring(t, "alice", "bob")
	ba := mustKeyring(t, "bob", "alice")
	if ab.ID() != ba.ID() {
		t.Error("ID() depends on key order")
	}
	if ab.ID() == mustKeyring(t, "alice").ID() || ab.ID() == mustKeyring(t, "alice", "carol").ID() {
		t.Error("ID() is the same for other keys")
	}
	if len(ab.ID()) != 64 {
		t.Errorf("ID() = %q, want 64 hex digits", ab.ID())
	}
	var buf bytes.Buffer
	if err := ab.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[0]&0x80 == 0 {
		t.Error("Serialize did not write binary OpenPGP")
	}
	back, err := ReadKeyring(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != ab.ID() {
		t.Error("ID() changed through Serialize and ReadKeyring")
	}
	if diff := cmp.Diff(ab.Keys(), back.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}

	// A new revocation is new key material: the ID changes.
	e := newEntity(t, "r", keyOptions{})
	before, err := ReadKeyring(publicOf(t, e))
	if err != nil {
		t.Fatal(err)
	}
	revoke(t, e, packet.KeyRetired, time.Now())
	after, err := ReadKeyring(publicOf(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if before.ID() == after.ID() {
		t.Error("ID() did not change when a revocation was added")
	}
}

func TestReadKeyringRefuses(t *testing.T) {
	t.Parallel()
	dave := mustKeyring(t, "dave")
	daveEntity, _ := dave.Entity(testkeys.Fingerprint("dave"))
	other := newEntity(t, "other", keyOptions{})
	// Bind dave's signing subkey to another primary key, without the
	// subkey's cross-signature: an attempt to claim dave's signatures.
	stolen := daveEntity.Subkeys[0]
	stolenSig := *stolen.Sig
	stolenSig.FlagSign = false
	stolenSig.FlagsValid = true
	stolenSig.EmbeddedSignature = nil
	if err := stolenSig.SignKey(stolen.PublicKey, other.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	stolen.Sig = &stolenSig
	other.Subkeys = append(other.Subkeys, stolen)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no keys found"},
		{"too large", make([]byte, MaxKeyringSize+1), "more than the 4194304 a keyring may have"},
		{"whitespace", []byte("\n \n"), "no keys found"},
		{"text", []byte("hello"), "neither binary"},
		{"secret armored", testkeys.Secret("alice"), "secret key material"},
		{"secret binary", secretOf(t, newEntity(t, "s", keyOptions{})), "secret key material"},
		{"duplicate", publicKeys("alice", "bob", "alice"), "given twice"},
		{"text between blocks", append(append(testkeys.Public("alice"), "junk\n"...), testkeys.Public("bob")...), "outside an armor block"},
		{"unterminated block", testkeys.Public("alice")[:200], "no END line"},
		{"signature block", []byte("-----BEGIN PGP SIGNATURE-----\n\nwsA=\n=AAAA\n-----END PGP SIGNATURE-----\n"), "not a"},
		{"corrupt binary", []byte{0x99, 0x01, 0x0d, 0x04, 0x00}, "key 1"},
		{"subkey bound to two keys", append(testkeysBinary(t, "dave"), publicOf(t, other)...), "appears both in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := ReadKeyring(tt.data)
			if err == nil {
				t.Fatalf("ReadKeyring accepted it: %v", k.Keys())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(tt.name, "secret") && !errors.Is(err, ErrSecretKey) {
				t.Errorf("error %v does not wrap ErrSecretKey", err)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-48 * time.Hour)
	now := time.Now()
	revokedRetired := newEntity(t, "retired", keyOptions{created: past})
	revoke(t, revokedRetired, packet.KeyRetired, past.Add(time.Hour))
	subkeyOnly := newEntity(t, "subonly", keyOptions{created: past})
	if err := subkeyOnly.AddSigningSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoECDSA, Curve: packet.CurveNistP256, Time: func() time.Time { return past }}); err != nil {
		t.Fatal(err)
	}
	selfSig, _ := subkeyOnly.PrimarySelfSignature()
	selfSig.FlagSign = false

	type want struct {
		refuse bool
		err    error
		reason string
	}
	tests := []struct {
		name string
		key  func() []KeyIssue
		want []want
	}{
		{"alice rsa-3072", fixtureCheck(t, "alice"), nil},
		{"carol p-256", fixtureCheck(t, "carol"), nil},
		{"bob legacy ed25519", fixtureCheck(t, "bob"), []want{{reason: "containers_image_openpgp"}}},
		{"dave subkey only", fixtureCheck(t, "dave"), []want{{reason: "legacy EdDSA"}, {reason: "before 5.37"}}},
		{"ecdsa signing subkey", func() []KeyIssue { return CheckKey(subkeyOnly, now) }, []want{{reason: "reject signatures made by subkeys"}}},
		{"expired", entityCheck(t, keyOptions{created: past, lifetime: time.Hour}), []want{{refuse: true, err: ErrKeyExpired, reason: "expired on"}}},
		{"not yet expired", entityCheck(t, keyOptions{lifetime: time.Hour}), []want{{reason: "legacy EdDSA"}}},
		{"revoked", func() []KeyIssue { return CheckKey(revokedRetired, now) }, []want{{refuse: true, err: ErrKeyRevoked, reason: "key retired"}}},
		{"v6", entityCheck(t, keyOptions{v6: true, algo: packet.PubKeyAlgoEd25519}), []want{{refuse: true, err: ErrKeyUnsupported, reason: "v6 key"}}},
		{"rfc 9580 ed25519", entityCheck(t, keyOptions{algo: packet.PubKeyAlgoEd25519}), []want{{refuse: true, err: ErrKeyUnsupported, reason: "algorithm 27"}}},
		{"rfc 9580 ed448", entityCheck(t, keyOptions{algo: packet.PubKeyAlgoEd448}), []want{{refuse: true, err: ErrKeyUnsupported, reason: "algorithm 28"}}},
		{"rsa 1024", entityCheck(t, keyOptions{algo: packet.PubKeyAlgoRSA, rsaBits: 1024}), []want{{refuse: true, err: ErrKeyUnsupported, reason: "RSA-1024"}}},
		{"rsa 2048", entityCheck(t, keyOptions{algo: packet.PubKeyAlgoRSA, rsaBits: 2048}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.key()
			if len(got) != len(tt.want) {
				t.Fatalf("CheckKey = %+v, want %d issues", got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Refuse != w.refuse || !strings.Contains(g.Reason, w.reason) || (w.err != nil && !errors.Is(g, w.err)) || (w.err == nil && g.Unwrap() != nil) {
					t.Errorf("issue %d = %+v (%v), want %+v", i, g, g.Unwrap(), w)
				}
			}
		})
	}
}

func fixtureCheck(t *testing.T, name string) func() []KeyIssue {
	e, ok := mustKeyring(t, name).Entity(testkeys.Fingerprint(name))
	if !ok {
		t.Fatalf("no entity for %s", name)
	}
	return func() []KeyIssue { return CheckKey(e, time.Now()) }
}

func entityCheck(t *testing.T, opts keyOptions) func() []KeyIssue {
	e := newEntity(t, "k", opts)
	return func() []KeyIssue { return CheckKey(e, time.Now()) }
}

func TestValidAt(t *testing.T) {
	t.Parallel()
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	at := func(days int) time.Time { return created.Add(time.Duration(days) * day) }

	expiring := newEntity(t, "expiring", keyOptions{created: created, lifetime: 10 * day})
	superseded := newEntity(t, "superseded", keyOptions{created: created})
	revoke(t, superseded, packet.KeySuperseded, at(10))
	retired := newEntity(t, "retired", keyOptions{created: created})
	revoke(t, retired, packet.KeyRetired, at(10))
	compromised := newEntity(t, "compromised", keyOptions{created: created})
	revoke(t, compromised, packet.KeyCompromised, at(10))
	noReason := newEntity(t, "noreason", keyOptions{created: created})
	revoke(t, noReason, packet.NoReason, at(10))
	unknownReason := newEntity(t, "unknownreason", keyOptions{created: created})
	revoke(t, unknownReason, packet.ReasonForRevocation(99), at(10))
	plain := newEntity(t, "plain", keyOptions{created: created})
	withSub := newEntity(t, "withsub", keyOptions{created: created})
	subCfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created }, KeyLifetimeSecs: uint32(5 * day / time.Second)}
	if err := withSub.AddSigningSubkey(subCfg); err != nil {
		t.Fatal(err)
	}
	subFpr := fingerprintHex(withSub.Subkeys[len(withSub.Subkeys)-1].PublicKey.Fingerprint)

	var ring []byte
	for _, e := range []*openpgp.Entity{expiring, superseded, retired, compromised, noReason, unknownReason, plain, withSub} {
		ring = append(ring, publicOf(t, e)...)
	}
	keys, err := ReadKeyring(ring)
	if err != nil {
		t.Fatal(err)
	}
	fpr := func(e *openpgp.Entity) string { return fingerprintHex(e.PrimaryKey.Fingerprint) }

	tests := []struct {
		name   string
		fpr    string
		t      time.Time
		valid  bool
		reason string
	}{
		{"plain", fpr(plain), at(1000), true, ""},
		{"before the key existed", fpr(plain), at(-1), false, "after the signature entered"},
		{"before expiry", fpr(expiring), at(9), true, "expires on"},
		{"after expiry", fpr(expiring), at(11), false, "expired on"},
		{"before soft revocation (superseded)", fpr(superseded), at(9), true, "after the signature entered"},
		{"after soft revocation (superseded)", fpr(superseded), at(11), false, "before the signature entered"},
		{"before soft revocation (retired)", fpr(retired), at(9), true, "key retired"},
		{"after soft revocation (retired)", fpr(retired), at(11), false, "key retired"},
		{"compromised, before", fpr(compromised), at(1), false, "hard revocation"},
		{"compromised, after", fpr(compromised), at(11), false, "key compromised"},
		{"no reason, before", fpr(noReason), at(1), false, "hard revocation"},
		{"unknown reason, before", fpr(unknownReason), at(1), false, "reason code"},
		{"subkey before its expiry", subFpr, at(4), true, "expires on"},
		{"subkey after its expiry", subFpr, at(6), false, "subkey " + subFpr + " expired"},
		{"primary of that subkey after the subkey expired", fpr(withSub), at(6), true, ""},
		{"lower case", strings.ToLower(fpr(plain)), at(1), true, ""},
		{"unknown key", testkeys.Fingerprint("alice"), at(1), false, "not in the keyring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			valid, reason := keys.ValidAt(tt.fpr, tt.t)
			if valid != tt.valid || !strings.Contains(reason, tt.reason) || (tt.reason == "" && reason != "") {
				t.Errorf("ValidAt = %v, %q; want %v, %q", valid, reason, tt.valid, tt.reason)
			}
		})
	}
}

func FuzzReadKeyring(f *testing.F) {
	f.Add(publicKeys("alice"))
	f.Add(publicKeys("bob", "dave"))
	var buf bytes.Buffer
	if err := mustKeyring(f, "carol", "paula").Serialize(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(testkeys.Secret("bob"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ReadKeyring(data)
		if err != nil {
			return
		}
		// An accepted keyring has keys, serialises, and reads back to the
		// same keys and ID; every key and subkey resolves to one primary.
		keys := k.Keys()
		if len(keys) == 0 {
			t.Fatal("accepted a keyring without keys")
		}
		var out bytes.Buffer
		if err := k.Serialize(&out); err != nil {
			t.Fatalf("Serialize: %v", err)
		}
		back, err := ReadKeyring(out.Bytes())
		if err != nil {
			t.Fatalf("re-reading the serialised keyring: %v", err)
		}
		if back.ID() != k.ID() || !cmp.Equal(back.Keys(), keys) {
			t.Fatalf("keyring changed through Serialize: %v -> %v", keys, back.Keys())
		}
		for fpr, sk := range k.byFpr {
			if _, ok := k.Key(sk.primaryFpr); !ok || sk.fingerprint != fpr {
				t.Fatalf("key %s resolves to %s, not a primary key of the keyring", fpr, sk.primaryFpr)
			}
		}
		_ = k.Check(time.Now())
	})
}

func TestResolve(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "dave")
	alice, dave := testkeys.Fingerprint("alice"), testkeys.Fingerprint("dave")
	daveSub := fingerprintHex(signingPrivateKey(t, "dave").Fingerprint)
	tests := []struct {
		issuer  string
		primary string
		subkey  bool
	}{
		{alice, alice, false},
		{strings.ToLower(alice), alice, false},
		{alice[24:], alice, false},
		{"0x" + alice[24:], alice, false},
		{daveSub, dave, true},
		{daveSub[24:], dave, true},
		{dave, dave, false},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			t.Parallel()
			key, subkey, err := keys.Resolve(tt.issuer)
			if err != nil || key.Fingerprint != tt.primary || subkey != tt.subkey {
				t.Errorf("Resolve = %+v, %v, %v; want %s, %v", key, subkey, err, tt.primary, tt.subkey)
			}
		})
	}
	for _, bad := range []string{testkeys.Fingerprint("bob"), testkeys.Fingerprint("bob")[24:], "", "xyz", strings.Repeat("G", 16), alice[24:38] + "GG"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			t.Parallel()
			if key, _, err := keys.Resolve(bad); err == nil {
				t.Errorf("Resolve(%q) = %+v", bad, key)
			}
		})
	}
	if _, _, err := keys.Resolve(testkeys.Fingerprint("bob")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown fingerprint: %v, want ErrUnknownKey", err)
	}
}

func TestKeyringSelect(t *testing.T) {
	var all []byte
	for _, n := range []string{"alice", "bob", "carol"} {
		all = append(all, testkeys.Public(n)...)
	}
	kr, err := ReadKeyring(all)
	if err != nil {
		t.Fatal(err)
	}
	missingFpr := testkeys.Fingerprint("mallory")
	sub, missing, err := kr.Select([]string{strings.ToLower(testkeys.Fingerprint("carol")), missingFpr, testkeys.Fingerprint("carol"), testkeys.Fingerprint("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0] != missingFpr {
		t.Errorf("missing = %q, want [%s]", missing, missingFpr)
	}
	if got := sub.Keys(); len(got) != 2 {
		t.Fatalf("selected %v, want alice and carol", got)
	}
	if _, ok := sub.Key(testkeys.Fingerprint("bob")); ok {
		t.Error("bob was not selected but is in the keyring")
	}
	if none, missing, err := kr.Select([]string{missingFpr}); none != nil || len(missing) != 1 || err != nil {
		t.Errorf("Select of an absent key = %v, %v, %v", none, missing, err)
	}
}
