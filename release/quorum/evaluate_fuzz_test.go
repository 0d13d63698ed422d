package quorum

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// FuzzEvaluateBlob puts an arbitrary blob at a valid lookaside path, next
// to a good signature by bob, and checks the judgement as Evaluate and
// Tally apply it: a file counts only when the primitives, applied afresh,
// say it is a good signature by a trusted key of exactly this digest and
// image; each key counts once; every file that does not count says why;
// and the verification cache (warm run, and its file format) changes
// nothing.
func FuzzEvaluateBlob(f *testing.F) {
	digest := fxDigest("fuzz")
	sign := func(who, name, tag, d string) []byte { return fxSign(f, signerFor(f, who), name, tag, d) }
	good := sign("alice", "core-a", "1.0", digest)
	f.Add(good)
	f.Add(sign("dave", "core-a", "1.0", digest))
	f.Add(sign("bob", "core-a", "1.0", digest))
	f.Add(sign("mallory", "core-a", "1.0", digest))
	f.Add(sign("alice", "core-a", "1.0", fxDigest("other")))
	f.Add(sign("alice", "core-b", "1.0", digest))
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	var armored bytes.Buffer
	w, _ := armor.Encode(&armored, "PGP MESSAGE", nil)
	_, _ = w.Write(good)
	_ = w.Close()
	f.Add(armored.Bytes())

	keyring := fxKeyring(f, fxPublic("alice", "bob", "dave")...)
	keys, err := sigstore.ReadKeyring(keyring)
	if err != nil {
		f.Fatal(err)
	}
	bob := sign("bob", "core-a", "1.0", digest)
	now := time.Now()
	f.Fuzz(func(t *testing.T, blob []byte) {
		r := newFxRepoKeyring(t, gitstore.NewMemory(false), 1, keyring)
		r.commit(fxEpoch.Add(time.Hour), file(fxPath("core-a", digest, 1), blob), file(fxPath("core-a", digest, 2), bob))
		st, err := policy.LoadHead(r.repo)
		if err != nil {
			t.Fatal(err)
		}
		cache := OpenVerifyCache(r.repo, st.Keys)
		opts := EvaluateOptions{Cache: cache, Now: func() time.Time { return now }}
		cold, err := Evaluate(context.Background(), st, opts)
		if err != nil {
			t.Fatal(err)
		}
		warm, err := Evaluate(context.Background(), st, opts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cold, warm, evalCmp); diff != "" || warm.Verified != 0 {
			t.Fatalf("warm run (verified %d) differs from cold:\n%s", warm.Verified, diff)
		}
		fresh := newSection(cache.sec.keyring, policy.Policy{})
		if err := fresh.decode(cache.sec.encode()); err != nil {
			t.Fatalf("decoding the cache it encoded: %v", err)
		}
		if diff := cmp.Diff(cache.sec.units, fresh.units, cmp.AllowUnexported(unitMemo{}, memoFile{})); diff != "" {
			t.Fatalf("the cache format loses something:\n%s", diff)
		}

		for _, jf := range cold.Files {
			if !jf.Counts {
				if jf.Reason == "" {
					t.Errorf("%s does not count and says no reason", jf.Path)
				}
				if _, ok := jf.Problem(); !ok {
					t.Errorf("%s does not count and is no problem", jf.Path)
				}
				continue
			}
			data := blob
			if strings.HasSuffix(jf.Path, "/signature-2") {
				data = bob
			}
			sig, err := sigstore.Verify(data, keys)
			if err != nil {
				t.Fatalf("%s counts, but Verify says %v", jf.Path, err)
			}
			ref, err := sigstore.NormalizeRepository(strings.TrimSuffix(sig.Payload.Reference, ":"+tagOf(&jf)))
			if sig.Payload.Digest != digest || err != nil || ref != "docker.io/stagex/core-a" {
				t.Fatalf("%s counts, but it signs %+v", jf.Path, sig.Payload)
			}
			if ok, why := keys.ValidAt(sig.Signer, now); !ok {
				t.Fatalf("%s counts, but its key is not valid: %s", jf.Path, why)
			}
		}
		rep := cold.Tally(Scope{})
		for _, img := range rep.Images {
			for _, d := range img.Digests {
				var counted []string
				for _, s := range d.Signers {
					if s.Counted {
						counted = append(counted, s.Fingerprint)
					}
				}
				slices.Sort(counted)
				if n := len(slices.Compact(counted)); n != len(counted) || n != d.Count || d.Count > 2 {
					t.Fatalf("%s %s counts %d from signers %v", img.Reference, d.Digest, d.Count, d.Signers)
				}
			}
		}
	})
}

// FuzzCacheDecode feeds damaged cache contents to the decoder: it never
// panics, and what it accepts encodes back to something it reads the same.
func FuzzCacheDecode(f *testing.F) {
	s := newSection("keyring", policy.Policy{Namespace: "stagex"})
	s.units["stagex/core-a@sha256=00"] = &unitMemo{files: []memoFile{{path: "p", kind: sigstore.KindGap, msg: "m",
		sig: sigstore.Signature{Signer: "S", Created: time.Unix(1700000000, 0).UTC()}}}}
	s.records[[20]byte{1}] = recordMemo{rec: record.BuildRecord{Runs: []record.Run{{Time: time.Unix(1700000000, 0).UTC(), Source: "x"}},
		Built: []record.Built{{Name: "core-a", Tag: "1", Platform: "linux/amd64", Digest: "sha256:00"}}}}
	s.entered = map[string]time.Time{"p": time.Unix(1700000000, 0).UTC()}
	valid := s.encode()
	f.Add(valid[len(cacheMagic) : len(valid)-4])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		a := newSection("keyring", policy.Policy{})
		if err := a.decodeBody(string(body)); err != nil {
			return
		}
		b := newSection("keyring", policy.Policy{})
		if err := b.decode(a.encode()); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		opts := cmp.Options{cmp.AllowUnexported(unitMemo{}, memoFile{}, recordMemo{})}
		if diff := cmp.Diff(a.units, b.units, opts); diff != "" {
			t.Fatalf("units change:\n%s", diff)
		}
		if diff := cmp.Diff(a.records, b.records, opts); diff != "" {
			t.Fatalf("records change:\n%s", diff)
		}
	})
}
