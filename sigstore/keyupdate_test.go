package sigstore

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/internal/testkeys"
)

// secretEntity reads a fixture's secret key afresh, to be edited.
func secretEntity(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret(name)))
	if err != nil {
		t.Fatal(err)
	}
	return el[0]
}

// asPublished is e as a keyring in the repository holds it: its public
// parts, read back by ReadKeyring.
func asPublished(t *testing.T, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKeyring(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := k.Entity(fingerprintHex(e.PrimaryKey.Fingerprint))
	return got
}

func TestKeyUpdate(t *testing.T) {
	t.Parallel()
	cfg := &packet.Config{Time: func() time.Time { return time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC) }}
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, e *openpgp.Entity)
		want string // "" when the update is free
	}{
		{"unchanged", func(*testing.T, *openpgp.Entity) {}, ""},
		{"the holder adds a signing subkey", func(t *testing.T, e *openpgp.Entity) {
			if err := e.AddSigningSubkey(cfg); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"the holder revokes its subkey", func(t *testing.T, e *openpgp.Entity) {
			if err := e.RevokeSubkey(&e.Subkeys[0], packet.KeySuperseded, "new subkey", cfg); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"the holder revokes its key", func(t *testing.T, e *openpgp.Entity) {
			if err := e.RevokeKey(packet.KeyRetired, "retired", cfg); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"another maintainer strips the signing subkey", func(t *testing.T, e *openpgp.Entity) {
			e.Subkeys = nil
		}, "removes subkey "},
		{"another maintainer certifies the user ID", func(t *testing.T, e *openpgp.Entity) {
			alice := secretEntity(t, "alice")
			for name := range e.Identities {
				if err := e.SignIdentity(name, alice, cfg); err != nil {
					t.Fatal(err)
				}
			}
		}, "adds a certification made by " + testkeys.Fingerprint("alice")},
		{"the holder shortens its lifetime", func(t *testing.T, e *openpgp.Entity) {
			for name, id := range e.Identities {
				sig := *id.SelfSignature
				life := uint32(86400 * 30)
				sig.KeyLifetimeSecs = &life
				sig.CreationTime = cfg.Now()
				if err := sig.SignUserId(name, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
					t.Fatal(err)
				}
				id.SelfSignature, id.Signatures = &sig, append(id.Signatures, &sig)
			}
		}, "shortens the lifetime of key " + testkeys.Fingerprint("dave")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old := asPublished(t, secretEntity(t, "dave"))
			e := secretEntity(t, "dave")
			tc.edit(t, e)
			got := KeyUpdate(old, asPublished(t, e))
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("KeyUpdate = %q, want a free update", got)
			case tc.want != "" && !strings.Contains(strings.Join(got, "\n"), tc.want):
				t.Errorf("KeyUpdate = %q, want a line with %q", got, tc.want)
			}
		})
	}
}
