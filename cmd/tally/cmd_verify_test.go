package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// pushIndex pushes the layout dir to ref with manifest bytes unchanged.
func pushIndex(t *testing.T, dir, ref string) {
	t.Helper()
	if err := sample.Push(dir, ref); err != nil {
		t.Fatal(err)
	}
}

// TestInteropVerifyDockerReference runs tally verify against what a real
// docker-registry serves: exit 0 for the signed build, 3 once the tag
// serves a build nobody signed, 65 for an image the registry lacks.
func TestInteropVerifyDockerReference(t *testing.T) {
	interop.Require(t, "docker-registry", "git")
	platforms := []string{"linux/amd64", "linux/arm64"}
	s := newSignedRepo(t, sample.Spec{Name: "core-multi", Tag: "2.0", Platforms: platforms})
	other := filepath.Join(t.TempDir(), "other")
	if _, err := sample.Write(other, sample.Spec{Name: "core-multi", Tag: "2.0", Seed: "cloud", Platforms: platforms}); err != nil {
		t.Fatal(err)
	}
	reg := interop.StartRegistry(t)
	ref := reg.Addr + "/stagex/core-multi:2.0"
	pushIndex(t, filepath.Join(s.out, "core-multi"), ref)

	out, errOut, code := tallyRun(t, "verify", "--repo", s.repo, "docker://"+ref)
	if code != 0 {
		t.Fatalf("verify of the signed build: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range platforms {
		want := regexp.MustCompile(`(?m)^registry docker://` + regexp.QuoteMeta(ref) + ` ` + p + ` sha256:[0-9a-f]{64}: matches what met quorum$`)
		if !want.MatchString(out) {
			t.Errorf("no match line for %s in:\n%s", p, out)
		}
	}
	// A consumer's own trust root: alice alone suffices at threshold 1.
	if out, errOut, code := tallyRun(t, "verify", "--repo", s.repo, "--keyring", filepath.Join(s.keys, "alice.pub.asc"),
		"--threshold", "1", "docker://"+ref); code != 0 {
		t.Errorf("verify with alice's key alone: exit %d\n%s%s", code, out, errOut)
	}

	// The tag now serves a build that nobody signed.
	pushIndex(t, filepath.Join(other, "core-multi"), ref)
	out, errOut, code = tallyRun(t, "verify", "--repo", s.repo, "docker://"+ref)
	if code != exitMismatch {
		t.Errorf("verify of a moved tag: exit %d, want %d\n%s%s", code, exitMismatch, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^registry .* DIFFERS from what met quorum: sha256:[0-9a-f]{64}$`).MatchString(out) {
		t.Errorf("no DIFFERS line in:\n%s", out)
	}
	out, _, code = tallyRun(t, "verify", "--repo", s.repo, "--json", "docker://"+ref)
	if code != exitMismatch || !regexp.MustCompile(`"outcome": "mismatch"`).MatchString(out) {
		t.Errorf("verify --json of a moved tag: exit %d\n%s", code, out)
	}

	out, errOut, code = tallyRun(t, "verify", "--repo", s.repo, "docker://"+reg.Addr+"/stagex/core-nothere:1.0")
	if code != exitData || !regexp.MustCompile(`(?m)^tally: error: the registry has no such image: docker://`).MatchString(errOut) {
		t.Errorf("verify of a missing image: exit %d\n%s%s", code, out, errOut)
	}
}
