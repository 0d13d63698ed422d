package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
	"github.com/tally-sig/tally/sigstore"
)

var (
	tallyOnce sync.Once
	tallyDir  string
	tallyErr  error
)

// TestMain removes the tally program the interop tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	if tallyDir != "" {
		os.RemoveAll(tallyDir)
	}
	os.Exit(code)
}

// tallyProgram builds tally once for the tests that run real git hooks,
// with the test clock (TALLY_TEST_NOW, cmd/tally/testclock.go).
func tallyProgram(t *testing.T) string {
	t.Helper()
	tallyOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			tallyErr = errors.New("building tally: go is not on PATH")
			return
		}
		if tallyDir, tallyErr = os.MkdirTemp("", "tally-hooks-test-"); tallyErr != nil {
			return
		}
		out, err := exec.Command(goTool, "build", "-tags", "tallytest", "-o", filepath.Join(tallyDir, "tally"), "github.com/tally-sig/tally/cmd/tally").CombinedOutput()
		if err != nil {
			tallyErr = errors.New("building tally: " + err.Error() + "\n" + string(out))
		}
	})
	if tallyErr != nil {
		t.Fatal(tallyErr)
	}
	return filepath.Join(tallyDir, "tally")
}

// gitEnv is the environment of the interop git commands: commit dates after
// the test keys were made, and tally's clock pinned to the tests' "now".
func gitEnv(extra ...string) []string {
	date := now().Format("2006-01-02T15:04:05-0700")
	return append([]string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date,
		"TALLY_TEST_NOW=" + now().Format(time.RFC3339)}, extra...)
}

// wantRefused checks that a hook or tally check printed the refusal c expects.
func wantRefused(t *testing.T, what, stderr string, err error, c corpusCase, prefix string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s accepted the change; output:\n%s", what, stderr)
		return
	}
	pathRe := ".*"
	if c.path != "" {
		pathRe = c.path
	}
	re := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(prefix) + "tally: refused: (.*: )?" + pathRe + ".*" + regexp.QuoteMeta(c.reason))
	if !re.MatchString(stderr) {
		t.Errorf("%s: want a line matching %s; got:\n%s", what, re, stderr)
	}
}

// TestInteropCorpus pushes every hostile change with the real git to a bare
// repository guarded by the installed server hook (running the tally
// program), checks it with tally check, and stages it in a clone guarded by
// the client hooks: each must be refused every time. Then a valid tally sign
// push and a valid hand-made (gpg and git commit -S) push are accepted.
func TestInteropCorpus(t *testing.T) {
	interop.Require(t, "git", "gpg")
	tally := tallyProgram(t)
	f := newFixture(t)
	root := t.TempDir()
	server := filepath.Join(root, "server.git")
	interop.Git(t, "", nil, "init", "-q", "--bare", server)
	out := interop.Run(t, nil, tally, "hooks", "install", "--server", "--repo", server)
	if !strings.Contains(out, "installed "+filepath.Join(server, "hooks", "pre-receive")) {
		t.Fatalf("hooks install --server said %q", out)
	}

	// The first push into the empty repository establishes the trust root.
	stderr := pushErr(t, f.dir, server, "main:refs/heads/main")
	if stderr.err != nil || !strings.Contains(stderr.out, "remote: tally: accepted: 3 commit(s), 3 new signature(s)") {
		t.Fatalf("the first push: %v\n%s", stderr.err, stderr.out)
	}
	clone := filepath.Join(root, "clone")
	interop.Git(t, "", gitEnv(), "clone", "-q", server, clone)
	interop.Run(t, nil, tally, "hooks", "install", "--repo", clone)

	tips := map[string]string{}
	for _, c := range corpus {
		tip := c.build(t, f)
		tips[c.name] = tip.String()
		f.setRef("refs/cases/"+strings.ReplaceAll(c.name, " ", "-"), tip)
	}
	interop.Git(t, clone, gitEnv(), "fetch", "-q", f.dir, "+refs/cases/*:refs/cases/*")

	for _, c := range corpus {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			tip := tips[c.name]
			// 1. git push to the guarded server.
			r := pushErr(t, f.dir, server, "+"+tip+":refs/heads/main")
			wantRefused(t, "the server hook", r.out, r.err, c, "remote: ")
			if got := strings.TrimSpace(interop.Git(t, server, nil, "rev-parse", "main")); got != f.base.String() {
				t.Errorf("the server's main moved to %s", got)
			}
			// 2. tally check.
			cmd := interop.Command(t, "", gitEnv(), tally, "check", "--repo", f.dir, f.base.String()+".."+tip)
			outb, err := cmd.CombinedOutput()
			wantRefused(t, "tally check", string(outb), err, c, "")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 77 {
				t.Errorf("tally check exited %v, want 77", err)
			}
			// 3. the client pre-commit hook, for changes refused by content.
			if !c.content {
				return
			}
			interop.Git(t, clone, gitEnv(), "read-tree", tip)
			defer interop.Git(t, clone, gitEnv(), "read-tree", "HEAD")
			_, err = interop.GitErr(t, clone, gitEnv(), "commit", "-q", "-m", c.name)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			wantRefused(t, "the pre-commit hook", msg, err, c, "")
		})
	}

	t.Run("tags and branches", func(t *testing.T) {
		if r := pushErr(t, f.dir, server, f.init.String()+":refs/tags/v1"); r.err != nil {
			t.Fatalf("a new tag was refused: %v\n%s", r.err, r.out)
		}
		r := pushErr(t, f.dir, server, "+"+f.base.String()+":refs/tags/v1")
		wantRefused(t, "moving a tag", r.out, r.err, corpusCase{reason: "tags are never moved"}, "remote: ")
		r = pushErr(t, f.dir, server, ":refs/tags/v1")
		wantRefused(t, "deleting a tag", r.out, r.err, corpusCase{reason: "tags are never deleted"}, "remote: ")
		if r := pushErr(t, f.dir, server, f.base.String()+":refs/heads/release/1"); r.err != nil {
			t.Fatalf("a new branch was refused: %v\n%s", r.err, r.out)
		}
		r = pushErr(t, f.dir, server, ":refs/heads/release/1")
		wantRefused(t, "deleting a branch", r.out, r.err, corpusCase{reason: "deleting a protected branch"}, "remote: ")
	})

	t.Run("a tally sign push is accepted", func(t *testing.T) {
		out := filepath.Join(root, "out")
		if _, err := sample.Write(out, sample.Spec{Name: "core-signed", Tag: "1.0", Seed: "interop"}); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(root, "carol.sec.asc")
		if err := os.WriteFile(key, testkeys.Secret("carol"), 0o600); err != nil {
			t.Fatal(err)
		}
		interop.Run(t, gitEnv(), tally, "sign", "--repo", clone, "--release", "2026.12.0", "--key", key, "--out", out)
		r := gitErr(t, clone, gitEnv(), "push", "origin", "main")
		if r.err != nil || !strings.Contains(r.out, "remote: tally: accepted: 1 commit(s), 1 new signature(s)") {
			t.Fatalf("the signed push was refused: %v\n%s", r.err, r.out)
		}
	})

	t.Run("a hand-made signature push is accepted", func(t *testing.T) {
		home := interop.GPGHome(t, testkeys.Secret("carol"))
		fpr := testkeys.Fingerprint("carol")
		d := digest("core-hand 1.0")
		payload, err := sigstore.Payload{Reference: "stagex/core-hand:1.0", Digest: d}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(root, "payload.json")
		if err := os.WriteFile(in, payload, 0o644); err != nil {
			t.Fatal(err)
		}
		rel := sigPath("core-hand", d, 1)
		dst := filepath.Join(clone, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		env := gitEnv("GNUPGHOME=" + home)
		interop.Run(t, env, "gpg", "--batch", "--yes", "--local-user", fpr, "--output", dst, "--sign", in)
		interop.Git(t, clone, env, "add", rel)
		interop.Git(t, clone, env, "-c", "user.signingkey="+fpr, "commit", "-q", "-S", "-m", "sign core-hand by hand")
		r := gitErr(t, clone, env, "push", "origin", "main")
		if r.err != nil || !strings.Contains(r.out, "remote: tally: accepted: 1 commit(s), 1 new signature(s)") {
			t.Fatalf("the hand-made push was refused: %v\n%s", r.err, r.out)
		}
	})
}

type gitResult struct {
	out string // standard error and output
	err error
}

// pushErr pushes refspec from dir to the repository at url.
func pushErr(t *testing.T, dir, url, refspec string) gitResult {
	t.Helper()
	return gitErr(t, dir, gitEnv(), "push", url, refspec)
}

func gitErr(t *testing.T, dir string, env []string, args ...string) gitResult {
	t.Helper()
	cmd := interop.Command(t, dir, env, "git", args...)
	out, err := cmd.CombinedOutput()
	return gitResult{string(out), err}
}

// TestInteropHistoryShapes pushes every history shape, and every way one
// maintainer acting alone got past the guard (issue 16), with the real git
// into a bare repository guarded by the installed server hook, after its
// published tip; then checks the same range with tally check. Each is
// accepted or refused as the rules say, and a refused push moves nothing.
func TestInteropHistoryShapes(t *testing.T) {
	interop.Require(t, "git", "gpg")
	tally := tallyProgram(t)
	f := newFixture(t)
	type built struct{ published, tip plumbing.Hash }
	tips := make([]built, len(shapes))
	for i, s := range shapes {
		p, tip := s.build(t, f)
		tips[i] = built{p, tip}
	}
	for i, s := range shapes {
		t.Run(strings.ReplaceAll(s.name, " ", "_"), func(t *testing.T) {
			published, tip := tips[i].published, tips[i].tip
			server := filepath.Join(t.TempDir(), "server.git")
			interop.Git(t, "", nil, "init", "-q", "--bare", server)
			interop.Run(t, nil, tally, "hooks", "install", "--server", "--repo", server)
			for _, h := range []plumbing.Hash{f.base, published} {
				if r := pushErr(t, f.dir, server, h.String()+":refs/heads/main"); r.err != nil {
					t.Fatalf("pushing the published tip %s: %v\n%s", short(h), r.err, r.out)
				}
			}
			want := corpusCase{reason: s.reason}
			r := pushErr(t, f.dir, server, tip.String()+":refs/heads/main")
			if s.reason == "" {
				if r.err != nil {
					t.Errorf("the server hook refused the push: %v\n%s", r.err, r.out)
				}
			} else {
				wantRefused(t, "the server hook", r.out, r.err, want, "remote: ")
				if got := strings.TrimSpace(interop.Git(t, server, nil, "rev-parse", "main")); got != published.String() {
					t.Errorf("the server's main moved to %s", got)
				}
			}
			cmd := interop.Command(t, "", gitEnv(), tally, "check", "--repo", f.dir, published.String()+".."+tip.String())
			out, err := cmd.CombinedOutput()
			if s.reason == "" {
				if err != nil {
					t.Errorf("tally check refused the range: %v\n%s", err, out)
				}
				return
			}
			wantRefused(t, "tally check", string(out), err, want, "")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 77 {
				t.Errorf("tally check exited %v, want 77", err)
			}
		})
	}
}

// slowGPG writes a gpg wrapper that takes its time over every signature,
// as a smart card does, and returns the directory to put first on PATH.
func slowGPG(t *testing.T, delay string) string {
	t.Helper()
	real, err := exec.LookPath("gpg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n# a signer as slow as a smart card\nfor a in \"$@\"; do\n\tcase \"$a\" in\n\t--sign|--detach-sign|--clear-sign|-[!-]*s*) sleep " + delay + "; break;;\n\tesac\ndone\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "gpg"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInteropSlowSigner: with a signer that takes 1.5 seconds a signature
// (a smart card takes about 0.6), what tally and git commit -S make is
// accepted by tally's own server hook: tally init, sign --push, release
// cut, approve, and a plain git commit -S landing the approved change. The
// clock is the real one, so every signature is made after the time its
// commit claims.
func TestInteropSlowSigner(t *testing.T) {
	interop.Require(t, "git", "gpg", "gpg-agent")
	tally := tallyProgram(t)
	root := t.TempDir()
	home := interop.GPGHome(t, testkeys.Secret("alice"))
	alice := testkeys.Fingerprint("alice")
	env := []string{"GNUPGHOME=" + home, "PATH=" + slowGPG(t, "1.5") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=alice", "GIT_AUTHOR_EMAIL=alice@example.invalid", "GIT_COMMITTER_NAME=alice", "GIT_COMMITTER_EMAIL=alice@example.invalid"}
	keys := filepath.Join(root, "keys")
	if err := os.MkdirAll(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob", "carol"} {
		if err := os.WriteFile(filepath.Join(keys, n+".pub.asc"), testkeys.Public(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sigs, server, out := filepath.Join(root, "sigs"), filepath.Join(root, "server.git"), filepath.Join(root, "out")
	accepted := func(what string, r gitResult) {
		t.Helper()
		if r.err != nil || !strings.Contains(r.out, "remote: tally: accepted") {
			t.Fatalf("%s: the server hook refused it: %v\n%s", what, r.err, r.out)
		}
	}
	interop.Run(t, env, tally, "init", "--repo", sigs, "--threshold", "1",
		"--key-file", filepath.Join(keys, "alice.pub.asc"), "--key-file", filepath.Join(keys, "bob.pub.asc"), "--gpg", "--local-user", alice)
	interop.Git(t, "", env, "init", "-q", "--bare", server)
	interop.Run(t, env, tally, "hooks", "install", "--server", "--repo", server)
	interop.Git(t, sigs, env, "remote", "add", "origin", server)
	accepted("the init commit", gitErr(t, sigs, env, "push", "-u", "origin", "main"))

	// sign --push: two signatures, then the commit, each 1.5 s.
	if _, err := sample.Write(out, sample.Spec{Name: "core-slow", Tag: "1.0", Seed: "slow"}, sample.Spec{Name: "core-card", Tag: "1.0", Seed: "card"}); err != nil {
		t.Fatal(err)
	}
	cmd := interop.Command(t, "", env, tally, "sign", "--repo", sigs, "--release", "2026.12.0", "--out", out, "--gpg", "-u", alice, "--push")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "pushed main to its upstream") {
		t.Fatalf("tally sign --push with a slow signer: %v\n%s", err, b)
	}
	if got, want := interop.Git(t, server, nil, "rev-parse", "main"), interop.Git(t, sigs, nil, "rev-parse", "main"); got != want {
		t.Fatalf("the server's main is at %s, not at the signed commit %s", got, want)
	}

	// release cut: the manifest commit and the tag.
	interop.Run(t, env, tally, "release", "cut", "--repo", sigs, "--gpg", "--local-user", alice, "2026.12.0")
	accepted("the release commit", gitErr(t, sigs, env, "push", "origin", "main", "2026.12.0"))

	// A proposal (plain git commit -S), approved with tally approve, landed
	// with git commit -S.
	interop.Git(t, sigs, env, "checkout", "-q", "-b", "add-carol")
	ring := filepath.Join(sigs, "stagex-keyring.pgp")
	var all []byte
	for _, n := range []string{"alice", "bob", "carol"} {
		all = append(all, testkeys.Public(n)...)
	}
	if err := os.WriteFile(ring, all, 0o644); err != nil {
		t.Fatal(err)
	}
	interop.Git(t, sigs, env, "-c", "user.signingkey="+alice, "commit", "-q", "-S", "-am", "add carol")
	interop.Git(t, sigs, env, "checkout", "-q", "main")
	interop.Run(t, env, tally, "approve", "--repo", sigs, "--gpg", "--local-user", alice, "add-carol")
	accepted("the approval", gitErr(t, sigs, env, "push", "origin", "main"))
	// The client hooks judge the landing too: pre-commit counts the
	// approvals for the staged change on top of HEAD.
	interop.Run(t, env, tally, "hooks", "install", "--repo", sigs)
	interop.Git(t, sigs, env, "checkout", "-q", "add-carol", "--", "stagex-keyring.pgp")
	interop.Git(t, sigs, env, "-c", "user.signingkey="+alice, "commit", "-q", "-S", "-m", "add carol")
	accepted("the approved change (git commit -S)", gitErr(t, sigs, env, "push", "origin", "main"))
	// And the proposal branch itself, signed slowly by git.
	r := gitErr(t, sigs, env, "push", "origin", "add-carol")
	if r.err == nil || !strings.Contains(r.out, "needs approvals") {
		t.Errorf("the unapproved proposal branch: want a refusal for want of approvals (and nothing about its signature):\n%s", r.out)
	}
	if strings.Contains(r.out, "commit-signature") || strings.Contains(r.out, "expired") {
		t.Errorf("the slow signature of the proposal was refused:\n%s", r.out)
	}
}

// TestInteropSizeBeforeContent pushes ten zero-filled files larger than a
// signature file may be, unsigned and then signed, and 25 garbage files,
// through the real server hook and tally check: an unsigned push is refused
// for its signature alone, its content never judged; the signed one is
// refused file by file from the sizes in the object headers; and the output
// of a large refusal is capped, with the whole list in --json.
func TestInteropSizeBeforeContent(t *testing.T) {
	interop.Require(t, "git", "gpg")
	tally := tallyProgram(t)
	f := newFixture(t)
	server := filepath.Join(t.TempDir(), "server.git")
	interop.Git(t, "", nil, "init", "-q", "--bare", server)
	interop.Run(t, nil, tally, "hooks", "install", "--server", "--repo", server)
	if r := pushErr(t, f.dir, server, "main:refs/heads/main"); r.err != nil {
		t.Fatalf("the first push: %v\n%s", r.err, r.out)
	}
	var big []edit
	zeros := make([]byte, sigstore.MaxSignatureSize+1)
	for i := range 10 {
		big = append(big, add(sigPath(fmt.Sprintf("core-big%d", i), digest(fmt.Sprint(i)), 1), zeros))
	}
	var junk []edit
	for i := range 25 {
		junk = append(junk, add(sigPath(fmt.Sprintf("core-junk%02d", i), digest(fmt.Sprint("junk", i)), 1), []byte("not a signature\n")))
	}
	unsigned := f.on(f.base, "", "big, unsigned", big...)
	signed := f.on(f.base, "alice", "big, signed", big...)
	garbage := f.on(f.base, "alice", "junk", junk...)
	check := func(tip plumbing.Hash, extra ...string) string {
		args := append([]string{"check", "--repo", f.dir}, extra...)
		cmd := interop.Command(t, "", gitEnv(), tally, append(args, f.base.String()+".."+tip.String())...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 77 {
			t.Errorf("tally check %s: %v, want exit 77\n%s", short(tip), err, out)
		}
		return string(out)
	}
	for _, out := range []string{pushErr(t, f.dir, server, unsigned.String()+":refs/heads/main").out, check(unsigned)} {
		if !strings.Contains(out, "tally: refused: commit "+unsigned.String()[:12]+": not signed") || !strings.Contains(out, "the content of the commits was not judged") {
			t.Errorf("the unsigned push was not refused for its signature alone:\n%s", out)
		}
		if strings.Contains(out, "clients read") {
			t.Errorf("the content of the unsigned push was judged:\n%s", out)
		}
	}
	for _, out := range []string{pushErr(t, f.dir, server, signed.String()+":refs/heads/main").out, check(signed)} {
		if n := strings.Count(out, "garbage: the signature file is 4194305 bytes, more than the 4194304 clients read"); n != 10 {
			t.Errorf("%d oversized files refused, want 10:\n%s", n, out)
		}
	}
	for _, out := range []string{pushErr(t, f.dir, server, garbage.String()+":refs/heads/main").out, check(garbage)} {
		if n := strings.Count(out, "tally: refused: stagex/core-junk"); n != 10 {
			t.Errorf("%d refusal lines of garbage, want the first 10:\n%s", n, out)
		}
		if !strings.Contains(out, "tally: refused: ... and 15 more signature (garbage) refusal(s); tally check --json") {
			t.Errorf("no count of the other 15:\n%s", out)
		}
	}
	var res Result
	cmd := interop.Command(t, "", gitEnv(), tally, "check", "--repo", f.dir, "--json", f.base.String()+".."+garbage.String())
	out, _ := cmd.Output()
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	if len(res.Refusals) != 25 {
		t.Errorf("check --json lists %d refusals, want all 25", len(res.Refusals))
	}
	if got := strings.TrimSpace(interop.Git(t, server, nil, "rev-parse", "main")); got != f.base.String() {
		t.Errorf("the server's main moved to %s", got)
	}
}

// TestInteropSignRefusesRevokedSubkey: dave revokes his only signing
// subkey in the repository's keyring (an update its holder may make alone:
// the server hook accepts it); tally sign with his secret key file, which
// knows nothing of the revocation, then refuses before signing, with exit
// 65 naming the subkey and the date, and commits nothing.
func TestInteropSignRefusesRevokedSubkey(t *testing.T) {
	interop.Require(t, "git", "gpg")
	tally := tallyProgram(t)
	f := newFixture(t)
	published := withDave(t, f)
	d := daveEntity(t)
	revokedAt := t0.Add(2 * time.Hour)
	if err := d.RevokeSubkey(&d.Subkeys[0], packet.KeySuperseded, "new card", &packet.Config{Time: func() time.Time { return revokedAt }}); err != nil {
		t.Fatal(err)
	}
	revoked := f.on(published, "alice", "dave revoked his subkey", add(keyringAt, keyringWith(t, d)))
	f.setRef("refs/heads/main", revoked)
	root := t.TempDir()
	server := filepath.Join(root, "server.git")
	interop.Git(t, "", nil, "init", "-q", "--bare", server)
	interop.Run(t, nil, tally, "hooks", "install", "--server", "--repo", server)
	for _, h := range []plumbing.Hash{f.base, published, revoked} {
		if r := pushErr(t, f.dir, server, h.String()+":refs/heads/main"); r.err != nil {
			t.Fatalf("pushing %s: %v\n%s", short(h), r.err, r.out)
		}
	}
	clone := filepath.Join(root, "clone")
	interop.Git(t, "", gitEnv(), "clone", "-q", server, clone)
	out := filepath.Join(root, "out")
	if _, err := sample.Write(out, sample.Spec{Name: "core-dave", Tag: "1.0", Seed: "dave"}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(root, "dave.sec.asc")
	if err := os.WriteFile(key, testkeys.Secret("dave"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := interop.Command(t, "", gitEnv(), tally, "sign", "--repo", clone, "--release", "2026.12.0", "--key", key, "--out", out)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 65 {
		t.Fatalf("tally sign with a revoked signing subkey: %v, want exit 65\n%s", err, b)
	}
	want := "subkey FE77E7ADCE451920F2679A646F611A79CC4DC8C0 of key " + daveFpr + " was revoked on " + revokedAt.Format(time.RFC3339)
	if !strings.Contains(string(b), want) {
		t.Errorf("the refusal does not say %q:\n%s", want, b)
	}
	if got := strings.TrimSpace(interop.Git(t, clone, nil, "rev-parse", "HEAD")); got != revoked.String() {
		t.Errorf("the branch moved to %s", got)
	}
}
