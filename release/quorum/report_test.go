package quorum

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release/record"
)

// TestReportJSONContract pins the JSON contract of a report that scripts
// rely on: names and types of the members the issue promises. Extending
// the report is fine; removing or retyping one of these breaks scripts.
func TestReportJSONContract(t *testing.T) {
	t.Parallel()
	const rel = "2026.11.0"
	d1, d2 := fxDigest("amd64"), fxDigest("amd64-other")
	r := newFxRepo(t, 2, fxPublic("alice", "bob")...)
	at := fxEpoch.Add(time.Hour)
	r.commit(at,
		r.record(rel, testkeys.Fingerprint("alice"), at, record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/amd64", Digest: d1}),
		r.record(rel, testkeys.Fingerprint("bob"), at, record.Built{Name: "core-a", Tag: "1.0", Platform: "linux/amd64", Digest: d2}),
		file(fxPath("core-a", d1, 1), fxSign(t, signerFor(t, "alice"), "core-a", "1.0", d1)),
		file(fxPath("core-a", d1, 2), fxSign(t, signerFor(t, "mallory"), "core-a", "1.0", d1)),
		file(fxPath("core-a", d2, 1), []byte("garbage")),
	)
	data, err := json.Marshal(r.mustEvaluate(time.Now(), EvaluateOptions{}).Tally(Scope{}))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}

	fpr := regexp.MustCompile(`^[0-9A-F]{40}$`)
	want := func(obj map[string]any, key string, kind string) any {
		t.Helper()
		v, ok := obj[key]
		if !ok {
			t.Fatalf("no %q in %v", key, obj)
		}
		ok = false
		switch kind {
		case "number":
			_, ok = v.(float64)
		case "string":
			_, ok = v.(string)
		case "bool":
			_, ok = v.(bool)
		case "array":
			_, ok = v.([]any)
		}
		if !ok {
			t.Fatalf("%q is %T, want a %s", key, v, kind)
		}
		return v
	}
	if want(doc, "threshold", "number").(float64) != 2 {
		t.Errorf("threshold %v", doc["threshold"])
	}
	images := want(doc, "images", "array").([]any)
	if len(images) != 1 {
		t.Fatalf("images: %v", images)
	}
	img := images[0].(map[string]any)
	if want(img, "reference", "string") != "stagex/core-a:1.0" || want(img, "quorum", "bool") != false || want(img, "divergent", "bool") != true {
		t.Errorf("image %v", img)
	}
	digests := want(img, "digests", "array").([]any)
	if len(digests) != 2 {
		t.Fatalf("digests: %v", digests)
	}
	signers := 0
	for _, d := range digests {
		d := d.(map[string]any)
		want(d, "digest", "string")
		if want(d, "platform", "string") != "linux/amd64" {
			t.Errorf("platform %v", d["platform"])
		}
		want(d, "quorum", "bool")
		for _, s := range want(d, "signers", "array").([]any) {
			s := s.(map[string]any)
			signers++
			if !fpr.MatchString(want(s, "fingerprint", "string").(string)) {
				t.Errorf("fingerprint %v is not a primary fingerprint in uppercase", s["fingerprint"])
			}
			want(s, "name", "string")
			trusted := want(s, "trusted", "bool").(bool)
			if trusted != (s["fingerprint"] == testkeys.Fingerprint("alice")) {
				t.Errorf("signer %v", s)
			}
		}
	}
	if signers != 2 {
		t.Errorf("%d signers listed, want alice's and mallory's", signers)
	}
	problems := want(doc, "problems", "array").([]any)
	severities := map[string]bool{}
	for _, p := range problems {
		p := p.(map[string]any)
		want(p, "path", "string")
		want(p, "error", "string")
		severities[want(p, "severity", "string").(string)] = true
	}
	if !severities["invalid"] || !severities["warning"] || len(severities) != 2 {
		t.Errorf("severities %v, want invalid and warning", severities)
	}

	// Nothing in scope: empty arrays, never null.
	empty, err := json.Marshal(r.mustEvaluate(time.Now(), EvaluateOptions{}).Tally(Scope{Release: "2099.1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"images":\[\]`).Match(empty) || !regexp.MustCompile(`"problems":\[\]`).Match(empty) {
		t.Errorf("empty report: %s", empty)
	}
}
