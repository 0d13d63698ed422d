package state

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func sampleState() *State {
	h := strings.Repeat("ab", 20)
	id := "sha256:" + strings.Repeat("0f", 32)
	return &State{
		Version: formatVersion, Root: h, Namespace: "stagex", Commit: h,
		CommitTime: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Policy:     Policy{ID: id, Since: h, Threshold: 2, Keys: []string{"E0106E9228EB09351F6734C7ED8E3C9AEF5811B1"}},
		Superseded: []string{"sha256:" + strings.Repeat("00", 32)},
		VerifiedAt: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC),
	}
}

func TestParseRefusals(t *testing.T) {
	good := string(sampleState().Marshal())
	for name, data := range map[string]string{
		"empty":          "",
		"unknown field":  strings.Replace(good, `"root"`, `"rooot"`, 1),
		"version":        strings.Replace(good, `"tally_state": 1`, `"tally_state": 2`, 1),
		"short commit":   strings.Replace(good, `"commit": "abab`, `"commit": "ab`, 1),
		"bad policy id":  strings.Replace(good, `"id": "sha256:0f`, `"id": "md5:0f`, 1),
		"trailing data":  good + "{}",
		"unsorted":       strings.Replace(good, `"superseded_policies": [`, `"superseded_policies": ["sha256:`+strings.Repeat("ff", 32)+`",`, 1),
		"current in old": strings.Replace(good, strings.Repeat("00", 32), strings.Repeat("0f", 32), 1),
		"no namespace":   strings.Replace(good, `"namespace": "stagex"`, `"namespace": ""`, 1),
		"no time":        strings.Replace(good, `"verified_at": "2026-11-02T12:00:00Z"`, `"verified_at": "0001-01-01T00:00:00Z"`, 1),
	} {
		if _, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("the sample does not parse: %v", err)
	}
}

// FuzzParse: a state file that parses marshals to bytes that parse to the
// same state.
func FuzzParse(f *testing.F) {
	f.Add(sampleState().Marshal())
	f.Add([]byte(`{"tally_state":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		enc := s.Marshal()
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse(Marshal(s)): %v\n%s", err, enc)
		}
		if !bytes.Equal(again.Marshal(), enc) {
			t.Fatalf("not stable:\n%s\n%s", enc, again.Marshal())
		}
	})
}
