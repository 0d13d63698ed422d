package sigstore

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/tally-sig/tally/internal/testkeys"
)

// detachedAt signs data with a fixture key as if the clock said at.
func detachedAt(t testing.TB, name string, data []byte, at time.Time) []byte {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(testkeys.Secret(name)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return at }}
	if err := openpgp.ArmoredDetachSign(&b, el[0], bytes.NewReader(data), cfg); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func entities(t testing.TB, names ...string) openpgp.EntityList {
	t.Helper()
	k := mustKeyring(t, names...)
	var out openpgp.EntityList
	for _, key := range k.Keys() {
		e, _ := k.Entity(key.Fingerprint)
		out = append(out, e)
	}
	return out
}

// TestVerifyDetachedClockSkew: a commit signature made after the committer
// time (a slow signer, another clock) verifies up to MaxClockSkew later,
// and is judged at its creation time; later than that is refused.
func TestVerifyDetachedClockSkew(t *testing.T) {
	t.Parallel()
	claimed := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	data := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n")
	keys := entities(t, "alice", "bob")
	for _, tc := range []struct {
		name    string
		created time.Time
		wantAt  time.Time
		wantErr string
	}{
		{"at the committer time", claimed, claimed, ""},
		{"a second later (a smart card)", claimed.Add(time.Second), claimed.Add(time.Second), ""},
		{"nine minutes later", claimed.Add(9 * time.Minute), claimed.Add(9 * time.Minute), ""},
		{"exactly the skew later", claimed.Add(MaxClockSkew), claimed.Add(MaxClockSkew), ""},
		{"eleven minutes later", claimed.Add(11 * time.Minute), time.Time{}, "11m0s after the time it claims"},
		{"an hour before (a clock behind)", claimed.Add(-time.Hour), claimed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sig := detachedAt(t, "alice", data, tc.created)
			d, err := VerifyDetached(keys, data, sig, claimed)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("VerifyDetached = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !d.At.Equal(tc.wantAt) || d.Primary != testkeys.Fingerprint("alice") || !d.Created.Equal(tc.created.Truncate(time.Second)) {
				t.Errorf("VerifyDetached = %+v, want At %s", d, tc.wantAt)
			}
		})
	}
	t.Run("unknown signer", func(t *testing.T) {
		t.Parallel()
		_, err := VerifyDetached(keys, data, detachedAt(t, "mallory", data, claimed), claimed)
		if !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("VerifyDetached = %v, want ErrUnknownSigner", err)
		}
	})
	t.Run("two signatures", func(t *testing.T) {
		t.Parallel()
		one := detachedAt(t, "alice", data, claimed)
		var raw bytes.Buffer
		for _, s := range [][]byte{one, detachedAt(t, "bob", data, claimed)} {
			b, err := decodeArmored(s)
			if err != nil {
				t.Fatal(err)
			}
			raw.Write(b)
		}
		var armored bytes.Buffer
		if err := armorSignature(&armored, raw.Bytes()); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyDetached(keys, data, armored.Bytes(), claimed); err == nil || !strings.Contains(err.Error(), "exactly one signature packet") {
			t.Errorf("VerifyDetached = %v, want a refusal of two packets", err)
		}
	})
}

// FuzzVerifyDetached feeds commit and approval signatures to the detached
// signature check: it never panics, and what it accepts was made by a key
// of the keyring over exactly the signed data.
func FuzzVerifyDetached(f *testing.F) {
	keys := entities(f, "alice", "bob", "carol")
	claimed := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	data := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n")
	for _, k := range []string{"alice", "bob", "carol", "mallory"} {
		f.Add(detachedAt(f, k, data, claimed))
	}
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	known := map[string]bool{}
	for _, e := range keys {
		known[fingerprintHex(e.PrimaryKey.Fingerprint)] = true
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		d, err := VerifyDetached(keys, data, sig, claimed)
		if err != nil {
			return
		}
		if !known[d.Primary] || d.Issuer == "" || d.Created.After(claimed.Add(MaxClockSkew)) {
			t.Fatalf("accepted a signature by %q (issuer %q, made %s)", d.Primary, d.Issuer, d.Created)
		}
		if _, err := VerifyDetached(keys, append(bytes.Clone(data), 'x'), sig, claimed); err == nil {
			t.Fatal("the signature also verifies over other data")
		}
	})
}

func decodeArmored(b []byte) ([]byte, error) {
	block, err := armor.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(block.Body)
}

func armorSignature(w io.Writer, raw []byte) error {
	aw, err := armor.Encode(w, openpgp.SignatureType, nil)
	if err != nil {
		return err
	}
	if _, err := aw.Write(raw); err != nil {
		return err
	}
	return aw.Close()
}
