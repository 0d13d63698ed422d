package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/hooks"
	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/quorum"
)

// TestOneJudgementEverywhere judges one corpus of signature files through
// every entry point that decides whether a signature counts (status,
// tally check, merge, sign) and checks that they agree: the guard refuses
// exactly the files status does not count, with the same kind; merge leaves
// out every file whose own judgement fails (same kind) and adds or drops as
// already-there the rest, and the guard accepts the merge; sign skips a
// digest exactly when status counts the key's file, and signs again naming
// the kind otherwise.
func TestOneJudgementEverywhere(t *testing.T) {
	keys := keyFiles(t)
	key := func(n string) string { return filepath.Join(keys, n) }
	dir := t.TempDir()
	base, src, out := filepath.Join(dir, "base"), filepath.Join(dir, "src"), filepath.Join(dir, "out")
	mustTally(t, "init", "--repo", base, "--threshold", "1", "--key-file", key("alice.pub.asc"), "--key-file", key("bob.pub.asc"),
		"--key", key("alice.sec.asc"))
	var specs []sample.Spec
	for _, n := range []string{"core-a", "core-b", "core-c", "core-d", "core-e", "core-f"} {
		specs = append(specs, sample.Spec{Name: n, Tag: "1.0"})
	}
	digests, err := sample.Write(out, specs...)
	if err != nil {
		t.Fatal(err)
	}
	// The corpus commit is signed by a maintainer (alice, through gpg), so
	// that the guard judges its content: an unsigned commit is refused for
	// its signature alone.
	gnupg := interop.GPGHome(t, testkeys.Secret("alice"))
	git := func(repo string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid",
			"-c", "user.signingkey=" + testkeys.Fingerprint("alice")}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	git(dir, "clone", "-q", base, src)

	now := time.Now().UTC()
	path := func(name string, n int) string {
		return "stagex/" + name + "@sha256=" + strings.TrimPrefix(digests[name][0], "sha256:") + "/signature-" + string(rune('0'+n))
	}
	write := func(p string, args ...string) {
		t.Helper()
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := mksig(append(args, full)); err != nil {
			t.Fatal(err)
		}
	}
	good := func(p, who, name string) {
		write(p, "-created", now.Add(-time.Hour).Format(time.RFC3339), key(who+".sec.asc"), "stagex/"+name+":1.0", digests[name][0])
	}
	// core-a: an expired signature, then the same key's good one, another
	// key, and the first key again
	write(path("core-a", 1), "-created", now.Add(-3*time.Hour).Format(time.RFC3339), "-expires", "1h", key("alice.sec.asc"), "stagex/core-a:1.0", digests["core-a"][0])
	good(path("core-a", 2), "alice", "core-a")
	good(path("core-a", 3), "bob", "core-a")
	good(path("core-a", 4), "alice", "core-a")
	// core-b: garbage poisons the good signature after it
	if err := os.MkdirAll(filepath.Dir(filepath.Join(src, path("core-b", 1))), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, path("core-b", 1)), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good(path("core-b", 2), "bob", "core-b")
	// core-c: alice's signature behind a gap
	good(path("core-c", 2), "alice", "core-c")
	// core-d: alice's signature of core-a's digest filed under core-d, then a good one
	write(path("core-d", 1), "-created", now.Add(-time.Hour).Format(time.RFC3339), key("alice.sec.asc"), "stagex/core-d:1.0", digests["core-a"][0])
	good(path("core-d", 2), "alice", "core-d")
	// core-e: a legacy payload by alice; core-f: an outsider, then bob
	write(path("core-e", 1), "-created", now.Add(-time.Hour).Format(time.RFC3339), "-legacy", key("alice.sec.asc"), "stagex/core-e", digests["core-e"][0])
	good(path("core-f", 1), "mallory", "core-f")
	good(path("core-f", 2), "bob", "core-f")
	git(src, "add", "-A")
	git(src, "commit", "-q", "-S", "-m", "the corpus")
	corpus := []string{path("core-a", 1), path("core-a", 2), path("core-a", 3), path("core-a", 4), path("core-b", 1), path("core-b", 2),
		path("core-c", 2), path("core-d", 1), path("core-d", 2), path("core-e", 1), path("core-f", 1), path("core-f", 2)}

	// status: the kind of every file ("" when it counts)
	statusKinds := func(repo string) map[string]string {
		t.Helper()
		stdout, stderr, _ := tallyRun(t, "status", "--repo", repo, "--json")
		var rep quorum.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("status --json: %v\n%s%s", err, stdout, stderr)
		}
		kinds := map[string]string{}
		for _, p := range rep.Problems {
			if p.Kind != quorum.KindClientsRefuse {
				kinds[p.Path] = p.Kind
			}
		}
		return kinds
	}
	status := statusKinds(src)
	want := map[string]string{
		path("core-a", 1): "signature-expired", path("core-a", 4): "duplicate-signer",
		path("core-b", 1): "garbage", path("core-b", 2): "poisoned", path("core-c", 2): "gap",
		path("core-d", 1): "wrong-digest", path("core-e", 1): "legacy", path("core-f", 1): "unknown-signer",
	}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Fatalf("status (-want +got):\n%s", diff)
	}

	// the guard refuses exactly what status does not count, with its kind
	stdout, _, _ := tallyRun(t, "check", "--repo", src, "--json", "HEAD")
	var res hooks.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("check --json: %v\n%s", err, stdout)
	}
	guard := map[string]string{}
	for _, r := range res.Refusals {
		if r.Rule == hooks.RuleSignature {
			guard[r.Path] = string(r.Kind)
		}
	}
	if diff := cmp.Diff(status, guard); diff != "" {
		t.Errorf("tally check disagrees with status (-status +check):\n%s", diff)
	}

	// merge: every file whose own judgement fails is left out with the
	// same kind; the rest is added, or dropped as already there
	stdout, stderr, code := tallyRun(t, "merge", "--repo", base, "--key", key("alice.sec.asc"), "--json", src)
	var mres release.MergeResult
	if err := json.Unmarshal([]byte(stdout), &mres); err != nil {
		t.Fatalf("merge --json (exit %d): %v\n%s%s", code, err, stdout, stderr)
	}
	merged := map[string]string{}
	for _, f := range mres.Added {
		merged[f.From] = "added"
	}
	for _, f := range mres.Dropped {
		merged[f.From] = "dropped " + f.Reason
	}
	for _, f := range mres.Rejected {
		merged[f.From] = f.Kind
	}
	for _, p := range corpus {
		k := status[p]
		wantMerge := k
		switch k {
		case "":
			wantMerge = "added"
		case "duplicate-signer":
			wantMerge = "dropped " + release.DropSameKey
		case "gap", "poisoned":
			wantMerge = "added" // renumbered into a directory without gap or poison
		}
		if merged[p] != wantMerge {
			t.Errorf("merge of %s (status: %q): %q, want %q", p, k, merged[p], wantMerge)
		}
	}
	// the guard accepts every signature the merge commit added
	stdout, _, _ = tallyRun(t, "check", "--repo", base, "--json", "HEAD")
	res = hooks.Result{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("check --json: %v\n%s", err, stdout)
	}
	for _, r := range res.Refusals {
		if r.Rule == hooks.RuleSignature {
			t.Errorf("tally check refuses what merge committed: %+v", r)
		}
	}
	if after := statusKinds(base); len(after) != 0 {
		t.Errorf("after the merge, status finds problems: %v", after)
	}

	// sign: skipped exactly where status counts alice's file, else signed
	// again naming the kind of alice's file
	stdout, stderr, code = tallyRun(t, "sign", "--repo", src, "--release", "1.0", "--out", out, "--key", key("alice.sec.asc"), "--json")
	var sres release.SignResult
	if err := json.Unmarshal([]byte(stdout), &sres); err != nil {
		t.Fatalf("sign --json (exit %d): %v\n%s%s", code, err, stdout, stderr)
	}
	got := map[string]string{}
	for _, s := range sres.Skipped {
		got[s.Name] = "skipped " + s.Path
	}
	for _, s := range sres.Signed {
		got[s.Name] = "signed"
		if s.Resigned != "" {
			_, rest, _ := strings.Cut(s.Resigned, "does not count: ")
			kind, _, _ := strings.Cut(rest, ":")
			got[s.Name] = "signed again: " + kind
		}
	}
	wantSign := map[string]string{
		"core-a": "skipped " + path("core-a", 2), // the expired signature-1 does not take the slot
		"core-c": "signed again: gap",
		"core-d": "skipped " + path("core-d", 2),
		"core-e": "signed again: legacy",
		"core-f": "signed",
	}
	// core-b: alice has no file there: she signs (a poisoned directory
	// hides hers too, as status then says)
	wantSign["core-b"] = "signed"
	if diff := cmp.Diff(wantSign, got); diff != "" {
		t.Errorf("sign (-want +got):\n%s", diff)
	}
}

// TestMergeNeverCommitsWhatCheckRefuses is a property over random corpora
// of the guard's kinds of files, in the branch and in the source alike:
// whatever tally merge commits, tally check accepts.
func TestMergeNeverCommitsWhatCheckRefuses(t *testing.T) {
	keys := keyFiles(t)
	key := func(n string) string { return filepath.Join(keys, n) }
	out := t.TempDir()
	names := []string{"core-a", "core-b", "core-c"}
	var specs []sample.Spec
	for _, n := range names {
		specs = append(specs, sample.Spec{Name: n, Tag: "1.0"})
	}
	digests, err := sample.Write(out, specs...)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	kinds := []string{"alice", "bob", "expired", "garbage", "empty", "wrong-digest", "legacy", "mallory"}
	added, rejected := 0, 0
	for seed := range 8 {
		dir := t.TempDir()
		base, src := filepath.Join(dir, "base"), filepath.Join(dir, "src")
		mustTally(t, "init", "--repo", base, "--threshold", "1", "--key-file", key("alice.pub.asc"), "--key-file", key("bob.pub.asc"),
			"--key", key("alice.sec.asc"))
		git := func(repo string, args ...string) {
			t.Helper()
			cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, b)
			}
		}
		git(dir, "clone", "-q", base, src)
		rnd := uint64(seed)*2654435761 + 1
		next := func(n int) int {
			rnd ^= rnd << 13
			rnd ^= rnd >> 7
			rnd ^= rnd << 17
			return int(rnd % uint64(n))
		}
		fill := func(repo string) {
			for _, name := range names {
				for num := 1; num <= 3; num++ {
					if next(3) == 0 {
						continue // a gap, sometimes
					}
					p := filepath.Join(repo, "stagex", name+"@sha256="+strings.TrimPrefix(digests[name][0], "sha256:"), "signature-"+string(rune('0'+num)))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					created := now.Add(-time.Hour).Format(time.RFC3339)
					ref, d := "stagex/"+name+":1.0", digests[name][0]
					var err error
					switch k := kinds[next(len(kinds))]; k {
					case "alice", "bob", "mallory":
						err = mksig([]string{"-created", created, key(k + ".sec.asc"), ref, d, p})
					case "expired":
						err = mksig([]string{"-created", now.Add(-3 * time.Hour).Format(time.RFC3339), "-expires", "1h", key("bob.sec.asc"), ref, d, p})
					case "garbage":
						err = os.WriteFile(p, []byte("garbage\n"), 0o644)
					case "empty":
						err = os.WriteFile(p, nil, 0o644)
					case "wrong-digest":
						err = mksig([]string{"-created", created, key("alice.sec.asc"), ref, digests[names[(next(2)+1+slices.Index(names, name))%3]][0], p})
					case "legacy":
						err = mksig([]string{"-created", created, "-legacy", key("alice.sec.asc"), "stagex/" + name, d, p})
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		fill(src)
		git(src, "add", "-A")
		git(src, "commit", "-q", "-m", "incoming")
		fill(base)
		git(base, "add", "-A")
		git(base, "commit", "-q", "-m", "the branch's own files")
		stdout, stderr, code := tallyRun(t, "merge", "--repo", base, "--key", key("alice.sec.asc"), "--json", src)
		if code != 0 && code != exitInvalid {
			t.Fatalf("seed %d: merge: exit %d\n%s%s", seed, code, stdout, stderr)
		}
		var mres release.MergeResult
		if err := json.Unmarshal([]byte(stdout), &mres); err != nil {
			t.Fatalf("seed %d: merge --json: %v\n%s", seed, err, stdout)
		}
		added, rejected = added+len(mres.Added), rejected+len(mres.Rejected)
		if mres.Commit == "" {
			continue
		}
		stdout, _, _ = tallyRun(t, "check", "--repo", base, "--json", "HEAD")
		var res hooks.Result
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("seed %d: check --json: %v\n%s", seed, err, stdout)
		}
		for _, r := range res.Refusals {
			if r.Rule == hooks.RuleSignature {
				t.Errorf("seed %d: tally check refuses what merge committed: %+v\nmerge: %+v", seed, r, mres)
			}
		}
	}
	// not vacuous: merges added files and left some out
	if added == 0 || rejected == 0 {
		t.Errorf("the corpora gave %d added and %d rejected files: the property was not exercised", added, rejected)
	}
	t.Logf("%d files added, %d left out over the corpora", added, rejected)
}
