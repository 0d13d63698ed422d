package sigstore

import (
	"errors"
	"testing"
)

// fastPayloadCount is how many of fastPayloadSeeds the fast path decides.
const fastPayloadCount = 7

// fastPayloadSeeds are payloads at the edges of the fast path: the forms
// real tools write, and near misses that must fall back to the full
// parser.
var fastPayloadSeeds = []string{
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"creator":"tally 1.0","timestamp":1735689600}}`,
	// skopeo standalone-sign / containers/image: same keys, other order, whitespace.
	" \r\n\t{ \"optional\" : { \"timestamp\" : -0 , \"creator\" : \"atomic 2.0.0\" } , \"critical\" : { \"type\" : \"atomic container signature\" , \"image\" : { \"docker-manifest-digest\" : \"" + testDigest + "\" } , \"identity\" : { \"docker-reference\" : \"docker.io/stagex/a:1\" } } } \n",
	// Decided by the fast path as the strict parser decides them; Validate
	// refuses the last two afterwards.
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":9007199254740993}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":-9223372036854775808}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"atomic container signature"},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
	// Near misses.
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":null}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":1e3}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":9223372036854775807}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":01}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"x":1e400}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"creator":"a","creator":"b"}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"cr\u0065ator":"\u00e9"}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature","type":"atomic container signature"},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}x`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{},}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1","x":1},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"pgp container image signature"},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"}},"optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"Optional":{}}`,
	`{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"}}`,
	"\ufeff" + `{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
	`[{"critical":{"identity":{"docker-reference":"stagex/x"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"pgp container image signature"},"optional":null}]`,
	`{}`, `[]`, `null`, ``,
}

// TestFastPayloadTakesTheFastPath checks that the payloads real tools write
// are decided by the fast path, with the strict parser's result, and that
// near misses are left to the full parser.
func TestFastPayloadTakesTheFastPath(t *testing.T) {
	t.Parallel()
	for i, in := range fastPayloadSeeds[:fastPayloadCount] {
		p, ok := fastParsePayload([]byte(in))
		if !ok {
			t.Errorf("seed %d: the fast path refuses %s", i, in)
			continue
		}
		want, err := parsePayloadJSON([]byte(in))
		if err != nil || p != want {
			t.Errorf("seed %d: fast path gives %+v, the full parser %+v (%v)", i, p, want, err)
		}
	}
	for i, in := range fastPayloadSeeds[fastPayloadCount:] {
		if p, ok := fastParsePayload([]byte(in)); ok {
			t.Errorf("near miss %d: the fast path accepts %s as %+v", i, in, p)
		}
	}
}

// FuzzFastPayload is the differential test of ParsePayload's fast path
// against the full parser: the same payload or the same error on every
// input, and the fast path accepts only what the strict parser accepts
// and the legacy form does not match.
func FuzzFastPayload(f *testing.F) {
	for _, s := range fastPayloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := ParsePayload(data)
		want, wantErr := parsePayloadFull(data)
		if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("ParsePayload(%q) = %+v, %v; the full parser gives %+v, %v", data, got, gotErr, want, wantErr)
		}
		if gotErr != nil && (errors.Is(gotErr, ErrLegacyPayload) != errors.Is(wantErr, ErrLegacyPayload)) {
			t.Fatalf("ParsePayload(%q): legacy %v, full parser legacy %v", data, gotErr, wantErr)
		}
		fast, ok := fastParsePayload(data)
		if !ok {
			return
		}
		strict, err := parsePayloadJSON(data)
		if err != nil || strict != fast {
			t.Fatalf("fast path accepts %q as %+v; the strict parser gives %+v, %v", data, fast, strict, err)
		}
		if legacy, isLegacy := parseLegacyPayload(data); isLegacy {
			t.Fatalf("fast path accepts %q, which the legacy form matches: %v", data, legacy)
		}
	})
}
