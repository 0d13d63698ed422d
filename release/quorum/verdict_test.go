package quorum

import "testing"

func TestShortName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "",
		"Alice Builder (test) <alice@example.org>": "Alice Builder",
		"<alice@example.org>":                      "tally",
	} {
		if got := ShortName(in); got != want {
			t.Errorf("ShortName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	ok := &Report{Threshold: 1, Images: []ImageStatus{{Reference: "stagex/core-hello:1", Quorum: true}}}
	noQuorum := &Report{Threshold: 1, Images: []ImageStatus{{Reference: "stagex/core-hello:1"}}}
	invalid := &Report{Threshold: 1, Images: ok.Images, Problems: []Problem{{Path: "x", Severity: "invalid"}}}
	for name, tt := range map[string]struct {
		rep  *Report
		want Outcome
	}{"ok": {ok, OutcomeOK}, "no quorum": {noQuorum, OutcomeNoQuorum}, "invalid": {invalid, OutcomeInvalid}} {
		if got := tt.rep.Verdict(); got != tt.want {
			t.Errorf("%s: Verdict() = %q, want %q", name, got, tt.want)
		}
	}
}
