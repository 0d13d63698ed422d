package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/sigstore"
)

// judgeRepo is a signatures repository for the judgement's interop tests:
// maintainers' keys in keys/ (fixtures and generated ones), one image.
func judgeRepo(t *testing.T, threshold string, maintainers ...string) (s *signedRepo, digest string) {
	t.Helper()
	s = &signedRepo{keys: keyFiles(t)}
	dir := t.TempDir()
	s.repo, s.out = filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	args := []string{"init", "--repo", s.repo, "--threshold", threshold, "--key", filepath.Join(s.keys, "alice.sec.asc")}
	for _, m := range maintainers {
		args = append(args, "--key-file", filepath.Join(s.keys, m+".pub.asc"))
	}
	mustTally(t, args...)
	var err error
	if s.digests, err = sample.Write(s.out, sample.Spec{Name: "core-hello", Tag: "1.0"}); err != nil {
		t.Fatal(err)
	}
	return s, s.digests["core-hello"][0]
}

// commitAt commits everything in the checkout with author and committer
// time at.
func commitAt(t *testing.T, repo string, at time.Time, msg string) {
	t.Helper()
	env := []string{"GIT_AUTHOR_DATE=" + at.Format(time.RFC3339), "GIT_COMMITTER_DATE=" + at.Format(time.RFC3339)}
	interop.Git(t, repo, env, "add", "-A")
	interop.Git(t, repo, env, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", msg)
}

// TestInteropExpiredThenValidCounts (issue 10, case 2): alice's expired
// signature-1 does not take her slot: tally counts her later signature,
// and stock skopeo accepts the image with it.
func TestInteropExpiredThenValidCounts(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "docker-registry", "git")
	s, digest := judgeRepo(t, "2", "alice", "bob")
	dir := filepath.Join(s.repo, "stagex", "core-hello@sha256="+strings.TrimPrefix(digest, "sha256:"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := mksig([]string{"-created", now.Add(-3 * time.Hour).Format(time.RFC3339), "-expires", "1h",
		filepath.Join(s.keys, "alice.sec.asc"), "stagex/core-hello:1.0", digest, filepath.Join(dir, "signature-1")}); err != nil {
		t.Fatal(err)
	}
	commitAt(t, s.repo, now.Add(-2*time.Hour), "an expired signature by another tool")
	for _, who := range []string{"alice", "bob"} {
		out := mustTally(t, "sign", "--repo", s.repo, "--release", "1.0", "--out", s.out, "--key", filepath.Join(s.keys, who+".sec.asc"))
		if who == "alice" && !strings.Contains(out, "signed again: ") {
			t.Errorf("alice's sign did not say why it signed again:\n%s", out)
		}
	}
	out := mustTally(t, "verify", "--repo", s.repo)
	if !strings.Contains(out, "OK: 1 image(s) meet quorum") || !strings.Contains(out, "signature-expired") {
		t.Errorf("verify:\n%s", out)
	}

	reg := interop.StartRegistry(t)
	if got := skopeoPush(t, reg, s.out, "core-hello", "1.0", false); got != digest {
		t.Fatalf("skopeo pushed %s, tally signed %s", got, digest)
	}
	ref := reg.Addr + "/stagex/core-hello:1.0"
	if err := newSkopeoConsumer(t, s, reg, "alice", "bob").pull(t, ref); err != nil {
		t.Errorf("skopeo refused the image whose quorum tally counts: %v", err)
	}
	// Not vacuous: alice's expired signature alone does not satisfy skopeo.
	if err := os.Remove(filepath.Join(dir, "signature-2")); err != nil {
		t.Fatal(err)
	}
	if err := newSkopeoConsumer(t, s, reg, "alice").pull(t, ref); err == nil {
		t.Error("skopeo accepted alice's expired signature")
	}
}

// TestInteropKeyExpiredSinceClientsRefuse (issue 10, case 5): erin signed
// while her key was valid; it has expired since. tally counts her signature
// (it entered before the expiry) and says that stock clients refuse it;
// skopeo, judging the key now, refuses the image.
func TestInteropKeyExpiredSinceClientsRefuse(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "docker-registry", "git")
	now := time.Now().UTC().Truncate(time.Second)
	// (after the fixture keys were made: they must be valid then)
	then := now.Add(-3 * 24 * time.Hour)
	keys := keyFiles(t)
	if _, err := mkkey([]string{"-created", now.Add(-5 * 24 * time.Hour).Format(time.RFC3339), "-lifetime", "72h",
		"erin", filepath.Join(keys, "erin")}); err != nil {
		t.Fatal(err)
	}
	// The repository was set up, and erin signed, three days ago; her key
	// expired two days ago.
	s := &signedRepo{keys: keys}
	dir := t.TempDir()
	s.repo, s.out = filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	// tally init (today) refuses a key that has expired by now, and commits
	// now: its files are committed as of back then instead.
	scratch := filepath.Join(dir, "scratch")
	mustTally(t, "init", "--repo", scratch, "--threshold", "1", "--key-file", filepath.Join(keys, "alice.pub.asc"))
	interop.Git(t, "", nil, "init", "-q", "-b", "main", s.repo)
	for _, f := range []string{"tally.toml", "stagex-keyring.pgp"} {
		data, err := os.ReadFile(filepath.Join(scratch, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.repo, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var ring bytes.Buffer
	for _, n := range []string{"alice", "erin"} {
		data, err := os.ReadFile(filepath.Join(keys, n+".pub.asc"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := sigstore.ReadKeyring(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Serialize(&ring); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.repo, "stagex-keyring.pgp"), ring.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(filepath.Join(s.repo, "tally.toml"))
	if err != nil {
		t.Fatal(err)
	}
	policy = regexp.MustCompile(`(?m)^threshold = 1$`).ReplaceAll(policy, []byte("threshold = 2"))
	if err := os.WriteFile(filepath.Join(s.repo, "tally.toml"), policy, 0o644); err != nil {
		t.Fatal(err)
	}
	commitAt(t, s.repo, then, "the trust policy: alice and erin")
	if s.digests, err = sample.Write(s.out, sample.Spec{Name: "core-hello", Tag: "1.0"}); err != nil {
		t.Fatal(err)
	}
	digest := s.digests["core-hello"][0]
	sigDir := filepath.Join(s.repo, "stagex", "core-hello@sha256="+strings.TrimPrefix(digest, "sha256:"))
	if err := os.MkdirAll(sigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mksig([]string{"-created", then.Format(time.RFC3339), filepath.Join(keys, "erin.sec.asc"), "stagex/core-hello:1.0", digest,
		filepath.Join(sigDir, "signature-1")}); err != nil {
		t.Fatal(err)
	}
	commitAt(t, s.repo, then.Add(time.Minute), "erin's signature")
	mustTally(t, "sign", "--repo", s.repo, "--release", "1.0", "--out", s.out, "--key", filepath.Join(keys, "alice.sec.asc"))

	out, errOut, code := tallyRun(t, "verify", "--repo", s.repo)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	warn := regexp.MustCompile(`(?m)^WARN stagex/core-hello:1\.0 \(release 1\.0\): 1 signature\(s\) count for the quorum; podman and skopeo refuse them now: .* by erin: .*expired on `)
	if !warn.MatchString(out) || !strings.Contains(out, "OK: 1 image(s) meet quorum") {
		t.Errorf("verify does not count erin's signature and warn about it:\n%s", out)
	}
	if out, _, code := tallyRun(t, "verify", "--repo", s.repo, "--strict-clients"); code != exitNoQuorum {
		t.Errorf("verify --strict-clients: exit %d, want %d\n%s", code, exitNoQuorum, out)
	}

	reg := interop.StartRegistry(t)
	if got := skopeoPush(t, reg, s.out, "core-hello", "1.0", false); got != digest {
		t.Fatalf("skopeo pushed %s, tally signed %s", got, digest)
	}
	ref := reg.Addr + "/stagex/core-hello:1.0"
	err = newSkopeoConsumer(t, s, reg, "alice", "erin").pull(t, ref)
	if err == nil {
		t.Fatal("skopeo accepted a signature by a key that has expired: the warning would be wrong")
	}
	t.Logf("skopeo refuses, as tally's warning says: %v", err)
	// Not vacuous: alice's signature alone satisfies a policy of alice.
	if err := newSkopeoConsumer(t, s, reg, "alice").pull(t, ref); err != nil {
		t.Errorf("skopeo refused alice's signature: %v", err)
	}
}
