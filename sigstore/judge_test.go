package sigstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/internal/testkeys"
)

func loc(n int) Location {
	return Location{Repository: "stagex/core-gcc", Digest: testDigest, Number: n}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice", "bob", "carol", "dave")
	otherDigest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		loc      Location
		want     string
		blob     []byte
		problem  Kind
		severity Severity
		message  string
	}{
		{"ok short form", loc(1), "stagex/core-gcc", mustSign(t, "alice"), "", SeverityNone, ""},
		{"ok normalised want", loc(1), "docker.io/stagex/core-gcc", mustSign(t, "bob"), "", SeverityNone, ""},
		{"ok subkey", loc(2), "index.docker.io/stagex/core-gcc", mustSign(t, "dave"), "", SeverityNone, ""},
		{"ok full reference in payload", loc(1), "stagex/core-gcc",
			mustSign(t, "carol", Payload{Reference: "docker.io/stagex/core-gcc:1", Digest: testDigest}), "", SeverityNone, ""},
		{"wrong digest", Location{Repository: "stagex/core-gcc", Digest: otherDigest, Number: 1}, "stagex/core-gcc", mustSign(t, "alice"),
			KindWrongDigest, SeverityInvalid, "not " + otherDigest},
		{"wrong repository", loc(1), "stagex/core-gcc",
			mustSign(t, "alice", Payload{Reference: "stagex/core-musl:14.2.0", Digest: testDigest}), KindWrongIdentity, SeverityInvalid, "docker.io/stagex/core-musl"},
		{"other registry", loc(1), "stagex/core-gcc",
			mustSign(t, "alice", Payload{Reference: "quay.io/stagex/core-gcc:1", Digest: testDigest}), KindWrongIdentity, SeverityInvalid, "quay.io"},
		{"bad expected repository", loc(1), "stagex/core-gcc:1", mustSign(t, "alice"), KindWrongIdentity, SeverityInvalid, "expected repository"},
		{"malformed path", Location{Repository: "docker.io/stagex/core-gcc", Digest: testDigest, Number: 1}, "stagex/core-gcc", mustSign(t, "alice"),
			KindMalformedPath, SeverityInvalid, "registry host"},
		{"directory only", loc(0), "stagex/core-gcc", mustSign(t, "alice"), KindMalformedPath, SeverityInvalid, "names a directory"},
		{"empty", loc(1), "stagex/core-gcc", nil, KindEmpty, SeverityInvalid, "empty"},
		{"garbage", loc(1), "stagex/core-gcc", []byte("garbage"), KindGarbage, SeverityInvalid, "not OpenPGP"},
		{"armored", loc(1), "stagex/core-gcc", armorBlob(t, mustSign(t, "alice")), KindArmored, SeverityInvalid, "armored"},
		{"truncated", loc(1), "stagex/core-gcc", mustSign(t, "alice")[:50], KindTruncated, SeverityInvalid, "ends"},
		{"unknown signer", loc(1), "stagex/core-gcc", mustSign(t, "paula"), KindUnknownSigner, SeverityWarning, testkeys.Fingerprint("paula")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := Judge(tt.loc, tt.want, tt.blob, keys)
			if v.Problem != tt.problem || v.Severity != tt.severity || !strings.Contains(v.Message, tt.message) {
				t.Errorf("Judge = %q/%q %q; want %q/%q mentioning %q", v.Problem, v.Severity, v.Message, tt.problem, tt.severity, tt.message)
			}
			if v.OK() != (tt.problem == "") || (v.OK() && v.Message != "") {
				t.Errorf("OK() = %v with message %q", v.OK(), v.Message)
			}
			if v.Location != tt.loc {
				t.Errorf("Location = %+v", v.Location)
			}
			if v.OK() && v.Signature.Signer == "" {
				t.Error("an ok verdict without a signer")
			}
		})
	}
}

// TestJudgeVerifiedFromCache checks JudgeVerified gives the same verdict for
// a Verify result that went through a JSON cache.
func TestJudgeVerifiedFromCache(t *testing.T) {
	t.Parallel()
	keys := mustKeyring(t, "alice")
	for name, blob := range map[string][]byte{
		"ok":             mustSign(t, "alice"),
		"unknown signer": mustSign(t, "bob"),
		"garbage":        []byte("x"),
		"legacy":         legacyBlob(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sig, err := Verify(blob, keys)
			direct := JudgeVerified(loc(1), "stagex/core-gcc", sig, err)

			type entry struct {
				Signature Signature
				Problem   *Problem
			}
			e := entry{Signature: sig}
			errors.As(err, &e.Problem)
			b, jerr := json.Marshal(e)
			if jerr != nil {
				t.Fatal(jerr)
			}
			var back entry
			if jerr := json.Unmarshal(b, &back); jerr != nil {
				t.Fatal(jerr)
			}
			var cachedErr error
			if back.Problem != nil {
				cachedErr = back.Problem
			}
			cached := JudgeVerified(loc(1), "stagex/core-gcc", back.Signature, cachedErr)
			if diff := cmp.Diff(direct, cached); diff != "" {
				t.Errorf("verdict from cache differs (-direct +cached):\n%s", diff)
			}
		})
	}
}

func legacyBlob(t testing.TB) []byte {
	t.Helper()
	body := []byte(`[{"critical":{"identity":{"docker-reference":"stagex/core-gcc"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"pgp container image signature"},"optional":null}]`)
	blob, err := fixtureSigner(t, "alice").SignMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

func TestJudgeLegacy(t *testing.T) {
	t.Parallel()
	v := Judge(loc(1), "stagex/core-gcc", legacyBlob(t), mustKeyring(t, "alice"))
	if v.Problem != KindLegacy || v.Severity != SeverityWarning || v.Signature.Signer != testkeys.Fingerprint("alice") {
		t.Errorf("Judge = %+v, want a legacy warning attributed to alice", v)
	}
	if !strings.Contains(v.Message, testDigest) || !strings.Contains(v.Message, "stagex/core-gcc") {
		t.Errorf("message %q does not report what the legacy payload claimed", v.Message)
	}
}

func TestJudgeDirectory(t *testing.T) {
	t.Parallel()
	ok := func(n int, signer string) Verdict {
		return Verdict{Location: loc(n), Signature: Signature{Signer: signer, Payload: testPayload}}
	}
	bad := func(n int, kind Kind) Verdict {
		return Verdict{Location: loc(n)}.with(kind, "x")
	}
	other := func(v Verdict) Verdict {
		v.Location.Repository = "stagex/other"
		return v
	}
	type result struct {
		N       int
		Problem Kind
	}
	tests := []struct {
		name string
		in   []Verdict
		want []result
	}{
		{"contiguous distinct", []Verdict{ok(2, "B"), ok(1, "A"), ok(3, "C")}, []result{{1, ""}, {2, ""}, {3, ""}}},
		{"duplicate signer", []Verdict{ok(1, "A"), ok(2, "A"), ok(3, "B"), ok(4, "A")},
			[]result{{1, ""}, {2, KindDuplicateSigner}, {3, ""}, {4, KindDuplicateSigner}}},
		{"first good one counts", []Verdict{bad(1, KindWrongDigest), ok(2, "A"), ok(3, "A")},
			[]result{{1, KindWrongDigest}, {2, ""}, {3, KindDuplicateSigner}}},
		{"gap", []Verdict{ok(1, "A"), ok(3, "B"), bad(4, KindGarbage), bad(5, KindUnknownSigner)},
			[]result{{1, ""}, {3, KindGap}, {4, KindGarbage}, {5, KindGap}}},
		{"missing first", []Verdict{ok(2, "A")}, []result{{2, KindGap}}},
		{"gap before duplicate", []Verdict{ok(1, "A"), ok(3, "A")}, []result{{1, ""}, {3, KindGap}}},
		{"invalid files do not open a gap", []Verdict{bad(1, KindBadSignature), ok(2, "A")}, []result{{1, KindBadSignature}, {2, ""}}},
		{"poisoned", []Verdict{ok(1, "A"), bad(2, KindArmored), bad(3, KindTruncated), bad(4, KindUnknownSigner), ok(5, "B")},
			[]result{{1, KindPoisoned}, {2, KindArmored}, {3, KindTruncated}, {4, KindPoisoned}, {5, KindPoisoned}}},
		{"poison after a gap is never read", []Verdict{ok(1, "A"), bad(3, KindEmpty)}, []result{{1, ""}, {3, KindEmpty}}},
		{"malformed does not poison", []Verdict{bad(1, KindMalformed), ok(2, "A")}, []result{{1, KindMalformed}, {2, ""}}},
		{"two directories", []Verdict{other(ok(2, "A")), ok(1, "A"), other(ok(1, "B")), ok(3, "C")},
			[]result{{1, ""}, {3, KindGap}, {1, ""}, {2, ""}}},
		{"malformed paths last", []Verdict{{Problem: KindMalformedPath, Severity: SeverityInvalid}, ok(1, "A")},
			[]result{{1, ""}, {0, KindMalformedPath}}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := append([]Verdict(nil), tt.in...)
			out := JudgeDirectory(tt.in)
			if diff := cmp.Diff(in, tt.in); diff != "" {
				t.Errorf("JudgeDirectory modified its input:\n%s", diff)
			}
			var got []result
			for _, v := range out {
				got = append(got, result{v.Location.Number, v.Problem})
				if v.Severity != v.Problem.Severity() {
					t.Errorf("signature-%d: severity %q for %q", v.Location.Number, v.Severity, v.Problem)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudgeDirectoryMessages(t *testing.T) {
	t.Parallel()
	out := JudgeDirectory([]Verdict{
		{Location: loc(1), Signature: Signature{Signer: "A"}},
		{Location: loc(2), Signature: Signature{Signer: "A"}},
		{Location: loc(4), Signature: Signature{Signer: "B"}},
	})
	want := []string{"", "key A already signed this digest in signature-1", "signature-3 is missing, and readers stop there"}
	for i, v := range out {
		if !strings.Contains(v.Message, want[i]) || (want[i] == "") != (v.Message == "") {
			t.Errorf("signature-%d: message %q, want %q", v.Location.Number, v.Message, want[i])
		}
	}
}

func TestKindSeverity(t *testing.T) {
	t.Parallel()
	invalid := []Kind{KindEmpty, KindArmored, KindGarbage, KindMalformed, KindTruncated, KindUnsupported, KindBadSignature, KindBadPayload, KindWrongDigest, KindWrongIdentity, KindMalformedPath}
	warning := []Kind{KindUnknownSigner, KindLegacy, KindDuplicateSigner, KindGap, KindPoisoned}
	for _, k := range invalid {
		if k.Severity() != SeverityInvalid {
			t.Errorf("%s: severity %q", k, k.Severity())
		}
	}
	for _, k := range warning {
		if k.Severity() != SeverityWarning {
			t.Errorf("%s: severity %q", k, k.Severity())
		}
	}
	if Kind("").Severity() != SeverityNone {
		t.Error("the zero kind has a severity")
	}
	if Kind("something-new").Severity() != SeverityInvalid {
		t.Error("an unknown kind is not invalid")
	}
}

func FuzzVerify(f *testing.F) {
	keys := mustKeyring(f, "alice", "bob", "carol", "dave")
	for _, name := range []string{"alice", "bob", "dave"} {
		f.Add(mustSign(f, name))
	}
	f.Add(compress(f, mustSign(f, "bob"), 1))
	f.Add(legacyBlob(f))
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PGP MESSAGE-----"))
	f.Fuzz(func(t *testing.T, blob []byte) {
		sig, err := Verify(blob, keys)
		v := JudgeVerified(loc(1), "stagex/core-gcc", sig, err)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Kind == "" || p.Kind.Severity() == SeverityNone {
				t.Fatalf("Verify error %v is not a *Problem with a kind", err)
			}
			if sig.Payload != (Payload{}) && p.Kind != KindLegacy {
				t.Fatalf("refused blob returned payload %+v", sig.Payload)
			}
			if v.OK() {
				t.Fatalf("refused blob judged ok: %v", err)
			}
			return
		}
		// Accepted: a known signer over a valid payload, and Verify is
		// deterministic.
		if _, ok := keys.Key(sig.Signer); !ok {
			t.Fatalf("accepted a signature by %q, not in the keyring", sig.Signer)
		}
		if err := sig.Payload.Validate(); err != nil {
			t.Fatalf("accepted an invalid payload: %v", err)
		}
		again, err := Verify(blob, keys)
		if err != nil || again != sig {
			t.Fatalf("Verify is not deterministic: %+v then %+v, %v", sig, again, err)
		}
		ref, err := parseSignedReference(sig.Payload.Reference)
		wantOK := err == nil && sig.Payload.Digest == testDigest && ref.repository == "docker.io/stagex/core-gcc"
		if v.OK() != wantOK {
			t.Fatalf("verdict %+v for payload %+v", v, sig.Payload)
		}
	})
}

func FuzzJudgeDirectory(f *testing.F) {
	f.Add([]byte{1, 2, 3, 1, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Pairs of (number, signer) bytes; number 0 means an invalid file.
		var in []Verdict
		for i := 0; i+1 < len(data) && len(in) < 50; i += 2 {
			n := int(data[i]%16) + 1
			v := Verdict{Location: loc(n), Signature: Signature{Signer: fmt.Sprint(data[i+1] % 4)}}
			switch data[i+1] % 7 {
			case 0:
				v = v.with(KindMalformed, "x")
			case 1:
				v = v.with(KindEmpty, "x")
			case 2:
				v = v.with(KindSignatureExpired, "x")
			}
			in = append(in, v)
		}
		out := JudgeDirectory(in)
		if len(out) != len(in) {
			t.Fatalf("%d verdicts in, %d out", len(in), len(out))
		}
		// Which files readers reach, and whether one of them poisons.
		reached := map[int]bool{}
		poisoned := false
		for next, i := 1, 0; i < len(out); i++ {
			n := out[i].Location.Number
			if n > next {
				break
			}
			reached[i] = true
			poisoned = poisoned || out[i].Problem.Poisons()
			if n == next {
				next++
			}
		}
		// The first reached file by a signer that still counted before the
		// directory rules is the one that counts, when any does.
		firstGood := map[string]int{}
		for _, v := range in {
			if v.OK() {
				if n, seen := firstGood[v.Signature.Signer]; !seen || v.Location.Number < n {
					firstGood[v.Signature.Signer] = v.Location.Number
				}
			}
		}
		counted := map[string]bool{}
		for i, v := range out {
			if v.OK() && firstGood[v.Signature.Signer] != v.Location.Number {
				t.Fatalf("signature-%d counts for %s, but signature-%d is its first good one", v.Location.Number, v.Signature.Signer, firstGood[v.Signature.Signer])
			}
			switch {
			case !reached[i] && v.OK():
				t.Fatalf("signature-%d after a gap judged ok", v.Location.Number)
			case poisoned && v.OK():
				t.Fatalf("signature-%d judged ok in a poisoned directory", v.Location.Number)
			case v.OK() && counted[v.Signature.Signer]:
				t.Fatalf("signer %s counted twice", v.Signature.Signer)
			}
			if v.OK() {
				counted[v.Signature.Signer] = true
			}
		}
	})
}
