package hooks

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

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
