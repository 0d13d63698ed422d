package sigstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testHex    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testDigest = "sha256:" + testHex
)

func TestPayloadMarshalExactBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload Payload
		want    string
	}{
		{
			name:    "no optional members",
			payload: Payload{Reference: "stagex/core-gcc:14.2.0", Digest: testDigest},
			want:    `{"critical":{"identity":{"docker-reference":"stagex/core-gcc:14.2.0"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
		},
		{
			name:    "creator and timestamp",
			payload: Payload{Reference: "docker.io/stagex/core-gcc:14.2.0", Digest: testDigest, Creator: "tally 1.0", Timestamp: 1735689600},
			want:    `{"critical":{"identity":{"docker-reference":"docker.io/stagex/core-gcc:14.2.0"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"creator":"tally 1.0","timestamp":1735689600}}`,
		},
		{
			name:    "html characters escaped like encoding/json",
			payload: Payload{Reference: "stagex/a:1", Digest: testDigest, Creator: "<a&b>"},
			want:    `{"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"creator":"\u003ca\u0026b\u003e"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.payload.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal:\n got %s\nwant %s", got, tt.want)
			}
			back, err := ParsePayload(got)
			if err != nil {
				t.Fatalf("ParsePayload(Marshal()): %v", err)
			}
			if diff := cmp.Diff(tt.payload, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPayloadMarshalRefusesInvalid(t *testing.T) {
	t.Parallel()
	tests := map[string]Payload{
		"empty":                  {},
		"no tag":                 {Reference: "stagex/core-gcc", Digest: testDigest},
		"digest in reference":    {Reference: "stagex/core-gcc:1@" + testDigest, Digest: testDigest},
		"uppercase repository":   {Reference: "stagex/Core:1", Digest: testDigest},
		"bare hex digest":        {Reference: "stagex/a:1", Digest: testHex},
		"uppercase digest":       {Reference: "stagex/a:1", Digest: "sha256:" + strings.ToUpper(testHex)},
		"sha512 digest":          {Reference: "stagex/a:1", Digest: "sha512:" + testHex + testHex},
		"short digest":           {Reference: "stagex/a:1", Digest: testDigest[:70]},
		"tag starts with dot":    {Reference: "stagex/a:.1", Digest: testDigest},
		"double slash":           {Reference: "stagex//a:1", Digest: testDigest},
		"image ID as repository": {Reference: testHex, Digest: testDigest},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if b, err := p.Marshal(); !errors.Is(err, ErrInvalidPayload) {
				t.Errorf("Marshal() = %s, %v; want error wrapping ErrInvalidPayload", b, err)
			}
		})
	}
}

func TestParsePayloadAccepts(t *testing.T) {
	t.Parallel()
	const crit = `"critical":{"identity":{"docker-reference":"stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"}`
	base := Payload{Reference: "stagex/a:1", Digest: testDigest}
	tests := []struct {
		name string
		json string
		want Payload
	}{
		{"canonical", `{` + crit + `,"optional":{}}`, base},
		{"members in any order", `{"optional":{},"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"` + testDigest + `"},"identity":{"docker-reference":"stagex/a:1"}}}`, base},
		{"whitespace", " \n{ " + crit + " , \"optional\" : { } }\n\t", base},
		{"unknown optional members ignored", `{` + crit + `,"optional":{"x":[1,{"y":null}],"z":"w"}}`, base},
		{"creator", `{` + crit + `,"optional":{"creator":"me"}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Creator: "me"}},
		{"timestamp", `{` + crit + `,"optional":{"timestamp":1700000000}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Timestamp: 1700000000}},
		{"timestamp in exponent form", `{` + crit + `,"optional":{"timestamp":1.7e9}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Timestamp: 1700000000}},
		{"timestamp with .0", `{` + crit + `,"optional":{"timestamp":5.0}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Timestamp: 5}},
		{"negative timestamp", `{` + crit + `,"optional":{"timestamp":-5}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Timestamp: -5}},
		{"null creator is an empty string, as in encoding/json", `{` + crit + `,"optional":{"creator":null}}`, base},
		{"escaped key", `{` + crit + `,"optional":{"\u0063reator":"x"}}`, Payload{Reference: "stagex/a:1", Digest: testDigest, Creator: "x"}},
		{"full reference", `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/stagex/a:1"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{}}`,
			Payload{Reference: "127.0.0.1:5000/stagex/a:1", Digest: testDigest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePayload([]byte(tt.json))
			if err != nil {
				t.Fatalf("ParsePayload: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParsePayloadRejects names every rejection containers/image makes
// (and the few tally adds), with a fragment of the expected message.
func TestParsePayloadRejects(t *testing.T) {
	t.Parallel()
	const (
		identity = `"identity":{"docker-reference":"stagex/a:1"}`
		image    = `"image":{"docker-manifest-digest":"` + testDigest + `"}`
		typ      = `"type":"atomic container signature"`
		crit     = `"critical":{` + identity + `,` + image + `,` + typ + `}`
	)
	tests := []struct {
		name, json, want string
	}{
		{"empty", ``, "not valid JSON"},
		{"null", `null`, "JSON object expected"},
		{"string", `"x"`, "JSON object expected"},
		{"array of modern payload", `[{` + crit + `,"optional":{}}]`, "JSON object expected"},
		{"trailing object", `{` + crit + `,"optional":{}}{}`, "not valid JSON"},
		{"trailing garbage", `{` + crit + `,"optional":{}}x`, "not valid JSON"},
		{"truncated", `{` + crit + `,"optional":{}`, "not valid JSON"},
		{"missing optional", `{` + crit + `}`, `key "optional" missing`},
		{"missing critical", `{"optional":{}}`, `key "critical" missing`},
		{"optional null", `{` + crit + `,"optional":null}`, "JSON object expected"},
		{"optional array", `{` + crit + `,"optional":[]}`, "JSON object expected"},
		{"critical null", `{"critical":null,"optional":{}}`, "JSON object expected"},
		{"duplicate top-level key", `{` + crit + `,` + crit + `,"optional":{}}`, `duplicate key "critical"`},
		{"duplicate via escape", `{` + crit + `,"optional":{},"\u006fptional":{}}`, `duplicate key "optional"`},
		{"unknown top-level key", `{` + crit + `,"optional":{},"extra":1}`, `unknown key "extra"`},
		{"top-level key case", `{"Critical":{` + identity + `,` + image + `,` + typ + `},"optional":{}}`, `unknown key "Critical"`},
		{"unknown critical member", `{"critical":{` + identity + `,` + image + `,` + typ + `,"x":1},"optional":{}}`, `unknown key "x"`},
		{"duplicate critical member", `{"critical":{` + identity + `,` + identity + `,` + image + `,` + typ + `},"optional":{}}`, `duplicate key "identity"`},
		{"missing type", `{"critical":{` + identity + `,` + image + `},"optional":{}}`, `key "type" missing`},
		{"missing image", `{"critical":{` + identity + `,` + typ + `},"optional":{}}`, `key "image" missing`},
		{"missing identity", `{"critical":{` + image + `,` + typ + `},"optional":{}}`, `key "identity" missing`},
		{"wrong type", `{"critical":{` + identity + `,` + image + `,"type":"atomic"},"optional":{}}`, `critical.type is "atomic"`},
		{"type not a string", `{"critical":{` + identity + `,` + image + `,"type":1},"optional":{}}`, `key "type"`},
		{"type null", `{"critical":{` + identity + `,` + image + `,"type":null},"optional":{}}`, `critical.type is ""`},
		{"unknown image member", `{"critical":{` + identity + `,"image":{"docker-manifest-digest":"` + testDigest + `","x":1},` + typ + `},"optional":{}}`, `unknown key "x"`},
		{"missing digest", `{"critical":{` + identity + `,"image":{},` + typ + `},"optional":{}}`, `key "docker-manifest-digest" missing`},
		{"digest not a string", `{"critical":{` + identity + `,"image":{"docker-manifest-digest":5},` + typ + `},"optional":{}}`, `key "docker-manifest-digest"`},
		{"bare hex digest", `{"critical":{` + identity + `,"image":{"docker-manifest-digest":"` + testHex + `"},` + typ + `},"optional":{}}`, "is not \"sha256:\""},
		{"unknown identity member", `{"critical":{"identity":{"docker-reference":"stagex/a:1","x":1},` + image + `,` + typ + `},"optional":{}}`, `unknown key "x"`},
		{"missing reference", `{"critical":{"identity":{},` + image + `,` + typ + `},"optional":{}}`, `key "docker-reference" missing`},
		{"reference null", `{"critical":{"identity":{"docker-reference":null},` + image + `,` + typ + `},"optional":{}}`, "empty reference"},
		{"reference without tag", `{"critical":{"identity":{"docker-reference":"stagex/a"},` + image + `,` + typ + `},"optional":{}}`, "has no tag"},
		{"reference uppercase", `{"critical":{"identity":{"docker-reference":"stagex/A:1"},` + image + `,` + typ + `},"optional":{}}`, "must be lowercase"},
		{"creator not a string", `{` + crit + `,"optional":{"creator":1}}`, `key "creator"`},
		{"duplicate creator", `{` + crit + `,"optional":{"creator":"a","creator":"b"}}`, `duplicate key "creator"`},
		{"duplicate unknown optional", `{` + crit + `,"optional":{"x":1,"x":2}}`, `duplicate key "x"`},
		{"timestamp fractional", `{` + crit + `,"optional":{"timestamp":1.5}}`, "is not an integer"},
		{"timestamp string", `{` + crit + `,"optional":{"timestamp":"1"}}`, `key "timestamp"`},
		{"timestamp too large", `{` + crit + `,"optional":{"timestamp":9223372036854775808}}`, "is not an integer"},
		{"timestamp overflow", `{` + crit + `,"optional":{"timestamp":1e400}}`, `key "timestamp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePayload([]byte(tt.json))
			if err == nil {
				t.Fatalf("ParsePayload accepted %s as %+v", tt.json, p)
			}
			if !errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrLegacyPayload) {
				t.Errorf("error %v does not wrap ErrInvalidPayload alone", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParsePayloadLegacy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string
		want LegacyPayloadError
	}{
		{
			name: "pre-2025 stagex script output",
			json: `[{"critical":{"identity":{"docker-reference":"stagex/core-gcc"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"pgp container image signature"},"optional":null}]`,
			want: LegacyPayloadError{Reference: "stagex/core-gcc", Digest: testDigest},
		},
		{
			name: "legacy type in object form",
			json: `{"critical":{"identity":{"docker-reference":"stagex/x"},"image":{"docker-manifest-digest":"abc"},"type":"pgp container image signature"},"optional":null}`,
			want: LegacyPayloadError{Reference: "stagex/x", Digest: "abc"},
		},
		{
			name: "nothing else known",
			json: `[{"critical":{"type":"pgp container image signature"}}]`,
			want: LegacyPayloadError{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePayload([]byte(tt.json))
			if !errors.Is(err, ErrLegacyPayload) {
				t.Fatalf("ParsePayload error %v, want ErrLegacyPayload", err)
			}
			var legacy *LegacyPayloadError
			if !errors.As(err, &legacy) {
				t.Fatalf("error %v is not a *LegacyPayloadError", err)
			}
			if diff := cmp.Diff(tt.want, *legacy); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"stagex/core-gcc", "docker.io/stagex/core-gcc"},
		{"docker.io/stagex/core-gcc", "docker.io/stagex/core-gcc"},
		{"index.docker.io/stagex/core-gcc", "docker.io/stagex/core-gcc"},
		{"busybox", "docker.io/library/busybox"},
		{"docker.io/busybox", "docker.io/library/busybox"},
		{"localhost/a", "localhost/a"},
		{"127.0.0.1:5000/stagex/a", "127.0.0.1:5000/stagex/a"},
		{"quay.io/a/b/c", "quay.io/a/b/c"},
		{"a__b/c-d--e/f.g", "docker.io/a__b/c-d--e/f.g"},
		{"Registry/a", "Registry/a"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			for range 2 { // the second answer comes from the cache
				got, err := NormalizeRepository(tt.in)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("NormalizeRepository(%q) = %q, want %q", tt.in, got, tt.want)
				}
			}
		})
	}
	for _, bad := range []string{"", "stagex/a:1", "stagex/a@" + testDigest, "-a", "a/", "/a", "a//b", "a/B", "a___b", "a..b", testHex, strings.Repeat("a", 250) + "/bbbbbb"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			t.Parallel()
			for range 2 { // a refusal is not remembered as an answer
				if got, err := NormalizeRepository(bad); err == nil {
					t.Errorf("NormalizeRepository(%q) = %q, want an error", bad, got)
				}
			}
		})
	}
}

func FuzzParsePayload(f *testing.F) {
	seed, _ := Payload{Reference: "stagex/core-gcc:14.2.0", Digest: testDigest, Creator: "c", Timestamp: 7}.Marshal()
	f.Add(seed)
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"a:b"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"atomic container signature"},"optional":{"timestamp":1e3,"x":null}}`))
	f.Add([]byte(`[{"critical":{"identity":{"docker-reference":"stagex/x"},"image":{"docker-manifest-digest":"` + testHex + `"},"type":"pgp container image signature"},"optional":null}]`))
	f.Add([]byte(`{"critical":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) && !errors.Is(err, ErrLegacyPayload) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		// An accepted payload is valid, re-marshals, and re-parses to itself.
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("accepted %q as %+v but Marshal fails: %v", data, p, err)
		}
		back, err := ParsePayload(out)
		if err != nil {
			t.Fatalf("Marshal output %s does not parse: %v", out, err)
		}
		if back != p {
			t.Fatalf("round trip changed %+v into %+v", p, back)
		}
		out2, err := back.Marshal()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("Marshal is not stable: %s then %s (%v)", out, out2, err)
		}
	})
}

func FuzzPayloadMarshal(f *testing.F) {
	f.Add("stagex/core-gcc:14.2.0", testDigest, "", int64(0))
	f.Add("127.0.0.1:5000/a/b:c", testDigest, "tally \u2603", int64(-1))
	f.Fuzz(func(t *testing.T, ref, digest, creator string, ts int64) {
		p := Payload{Reference: ref, Digest: digest, Creator: creator, Timestamp: ts}
		out, err := p.Marshal()
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("Marshal error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		back, err := ParsePayload(out)
		if err != nil {
			t.Fatalf("Marshal output %s does not parse: %v", out, err)
		}
		want := p
		// encoding/json writes each invalid UTF-8 byte as U+FFFD, as a
		// conversion to runes does.
		want.Creator = string([]rune(creator))
		if back != want {
			t.Fatalf("parsed %+v, want %+v", back, want)
		}
	})
}
