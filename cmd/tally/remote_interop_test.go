package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// These tests push and fetch as maintainers do, to a forge-like server on
// loopback whose bare repository carries tally's server hook: over ssh
// (a real sshd, the key named only in GIT_SSH_COMMAND, no agent) and over
// smart HTTP behind basic authentication (nginx, fcgiwrap and
// git-http-backend, the password in a credential.helper store). tally runs
// as its own process, so that it sees exactly the environment a maintainer
// gives git, and the server's hook runs that same tally.

// tallyProc runs the tally program (the test binary on PATH, see TestMain)
// with interop's isolated environment plus env, and returns its output and
// exit code.
func tallyProc(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := interop.Command(t, "", append([]string{"TALLY_TEST_NOW=2027-01-01T12:00:00Z"}, env...), "tally", args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}

func mustTallyProc(t *testing.T, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := tallyProc(t, env, args...)
	if code != 0 {
		t.Fatalf("tally %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

func mustMatch(t *testing.T, what, text, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(text) {
		t.Errorf("%s does not match %q:\n%s", what, pattern, text)
	}
}

func TestInteropPushOverSSHAndHTTP(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "tally")
	servers := []struct {
		name  string
		start func(testing.TB) *interop.GitServer
	}{
		{"ssh", interop.StartSSHD},
		{"smart HTTP with basic auth", interop.StartGitHTTP},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			s := srv.start(t)
			env := s.Env
			keys := keyFiles(t)
			key := func(who string) string { return filepath.Join(keys, who+".sec.asc") }
			dir := t.TempDir()
			alice, bob, out := filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "out")

			// The server: a bare repository guarded by tally's hook.
			server := filepath.Join(s.Root, "sigs.git")
			interop.Git(t, "", nil, "init", "-q", "--bare", server)
			mustTallyProc(t, nil, "hooks", "install", "--server", "--repo", server)

			// alice's repository, its upstream on the server.
			mustTallyProc(t, nil, "init", "--repo", alice, "--threshold", "2",
				"--key-file", filepath.Join(keys, "alice.pub.asc"), "--key-file", filepath.Join(keys, "bob.pub.asc"),
				"--key", key("alice"))
			interop.Git(t, alice, nil, "remote", "add", "origin", s.URL("sigs.git"))
			interop.Git(t, alice, nil, "config", "branch.main.remote", "origin")
			interop.Git(t, alice, nil, "config", "branch.main.merge", "refs/heads/main")
			if _, err := sample.Write(out, sample.Spec{Name: "core-hello", Tag: "1.0"}); err != nil {
				t.Fatal(err)
			}

			// sign --push into the empty server: the first push is the
			// trust root; the hook's lines reach alice as git shows them.
			stdout, stderr := mustTallyProc(t, env, "sign", "--repo", alice, "--release", "2026.11.0", "--out", out, "--key", key("alice"), "--push")
			mustMatch(t, "sign --push output", stdout, `(?m)^pushed main to its upstream$`)
			mustMatch(t, "sign --push stderr", stderr, `(?m)^remote: tally: note: commit [0-9a-f]{12} has no parent: accepted unjudged as part of the trust root`)
			mustMatch(t, "sign --push stderr", stderr, `(?m)^remote: tally: accepted: 2 commit\(s\), 1 new signature\(s\)$`)
			if got, want := interop.Git(t, server, nil, "rev-parse", "main"), interop.Git(t, alice, nil, "rev-parse", "HEAD"); got != want {
				t.Fatalf("server main = %s, alice's HEAD = %s", got, want)
			}

			// bob clones with the same credentials and signs; his push is
			// judged and accepted.
			interop.Git(t, "", env, "clone", "-q", s.URL("sigs.git"), bob)
			// bob names the forge by a url.insteadOf shorthand, which
			// only git understands.
			base := strings.TrimSuffix(s.URL("sigs.git"), "sigs.git")
			interop.Git(t, bob, nil, "config", "url."+base+".insteadOf", "forge:")
			interop.Git(t, bob, nil, "remote", "set-url", "origin", "forge:sigs.git")
			_, stderr = mustTallyProc(t, env, "sign", "--repo", bob, "--release", "2026.11.0", "--out", out, "--key", key("bob"), "--push")
			mustMatch(t, "bob's sign --push stderr", stderr, `(?m)^remote: tally: accepted: 1 commit\(s\), 1 new signature\(s\)$`)

			// alice signs another image meanwhile: her commit is replayed on
			// top of bob's and pushed.
			if _, err := sample.Write(out, sample.Spec{Name: "core-two", Tag: "2.0"}); err != nil {
				t.Fatal(err)
			}
			stdout, stderr = mustTallyProc(t, env, "sign", "--repo", alice, "--release", "2026.11.0", "--out", out, "--key", key("alice"), "--push")
			mustMatch(t, "replayed sign --push output", stdout, `(?m)^pushed main to its upstream$`)
			mustMatch(t, "replayed sign --push stderr", stderr, `(?m)^remote: tally: accepted: 1 commit\(s\), 1 new signature\(s\)$`)
			parent := strings.TrimSpace(interop.Git(t, server, nil, "rev-parse", "main^"))
			bobsTip := strings.TrimSpace(interop.Git(t, bob, nil, "rev-parse", "HEAD"))
			if parent != bobsTip {
				t.Errorf("alice's pushed commit has parent %s, want bob's %s (replayed)", parent, bobsTip)
			}

			// bob syncs: a fast-forward.
			stdout, _ = mustTallyProc(t, env, "sync", "--repo", bob, "--key", key("bob"))
			mustMatch(t, "bob's sync", stdout, `(?m)^fast-forwarded main to [0-9a-f]{12}$`)

			// merge of a URL fetches through git as well.
			stdout, _ = mustTallyProc(t, env, "merge", "--repo", bob, "--key", key("bob"), s.URL("sigs.git")+"#main")
			mustMatch(t, "merge of the server's URL", stdout, `(?m)^already up to date: main contains `)

			// bob signs core-two too, which reaches quorum; alice cuts and
			// publishes the release: publish pushes the branch and the tag.
			mustTallyProc(t, env, "sign", "--repo", bob, "--release", "2026.11.0", "--out", out, "--key", key("bob"), "--push")
			mustTallyProc(t, env, "sync", "--repo", alice, "--key", key("alice"))
			mustTallyProc(t, env, "release", "cut", "--repo", alice, "2026.11.0", "--key", key("alice"))
			stdout, stderr = mustTallyProc(t, env, "release", "publish", "--repo", alice, "2026.11.0", "--out", out, "--to", "oci:"+filepath.Join(dir, "mirror"))
			mustMatch(t, "publish output", stdout, `(?m)^pushed main -> main and tag 2026.11.0 to origin$`)
			mustMatch(t, "publish stderr", stderr, `(?m)^remote: tally: accepted: `)
			if got, want := interop.Git(t, server, nil, "rev-parse", "refs/tags/2026.11.0^{commit}"), interop.Git(t, alice, nil, "rev-parse", "HEAD"); got != want {
				t.Errorf("server tag = %s, alice's HEAD = %s", got, want)
			}

			// A commit the hook refuses (not signed): tally shows the
			// remote's reasons, exits 77 and keeps the commit.
			interop.Git(t, alice, nil, "commit", "-q", "--allow-empty", "-m", "unsigned")
			unsigned := interop.Git(t, alice, nil, "rev-parse", "HEAD")
			stdout, stderr, code := tallyProc(t, env, "sync", "--repo", alice, "--key", key("alice"))
			if code != exitRefused {
				t.Errorf("sync of a refused commit: exit %d, want %d\n%s%s", code, exitRefused, stdout, stderr)
			}
			mustMatch(t, "refused sync stderr", stderr, `(?m)^remote: tally: refused: commit [0-9a-f]{12}: not signed`)
			mustMatch(t, "refused sync stderr", stderr, `(?m)^tally: error: .*the remote refused the push: refs/heads/main:refs/heads/main \[remote rejected\] \(pre-receive hook declined\)`)
			mustMatch(t, "refused sync stderr", stderr, `(?m)^tally: hint: the remote refused the push; its reasons are the remote: lines above`)
			if got := interop.Git(t, alice, nil, "rev-parse", "HEAD"); got != unsigned {
				t.Errorf("alice's HEAD moved to %s after the refused push", got)
			}
			if got := interop.Git(t, server, nil, "rev-parse", "main"); got == unsigned {
				t.Errorf("the server took the unsigned commit")
			}

			// Without what the server needs (no key, no password) git's own
			// words say why; no HTML page, no stack trace.
			var noCreds []string
			if srv.name == "ssh" {
				noCreds = []string{"GIT_SSH_COMMAND=ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
			} else {
				noCreds = []string{"HOME=" + t.TempDir()}
			}
			stdout, stderr, code = tallyProc(t, noCreds, "sync", "--repo", bob, "--no-push")
			if code != exitData {
				t.Errorf("sync without credentials: exit %d, want %d\n%s%s", code, exitData, stdout, stderr)
			}
			mustMatch(t, "sync without credentials", stderr, `(?m)^tally: error: .*git failed: git fetch: `)
			mustMatch(t, "sync without credentials", stderr, `(?m)^tally: error: .*(Permission denied \(publickey\)|Authentication failed|could not read Username)`)
			mustMatch(t, "sync without credentials", stderr, `(?m)^tally: hint: tally fetches and pushes with your git and its configuration`)
			if strings.Contains(stderr, "<html") {
				t.Errorf("the server's HTML page reached the user:\n%s", stderr)
			}
		})
	}
}

// TestNoGitOnPath: without git, a push says so and how to push by hand.
func TestNoGitOnPath(t *testing.T) {
	t.Parallel()
	interop.Require(t, "tally")
	keys := keyFiles(t)
	repo := filepath.Join(t.TempDir(), "sigs")
	mustTallyProc(t, nil, "init", "--repo", repo, "--threshold", "1", "--key-file", filepath.Join(keys, "alice.pub.asc"))
	// A remote configured as git would write it; git itself is missing.
	cfg := filepath.Join(repo, ".git", "config")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("[remote \"origin\"]\n\turl = /nonexistent/sigs.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	tally, err := exec.LookPath("tally")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(tally, filepath.Join(bin, "tally")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := tallyProc(t, []string{"PATH=" + bin}, "sync", "--repo", repo, "--no-push")
	if code != exitData {
		t.Errorf("sync without git: exit %d, want %d\n%s%s", code, exitData, stdout, stderr)
	}
	mustMatch(t, "sync without git", stderr, `(?m)^tally: error: .*git is not installed \(not on PATH\)`)
	mustMatch(t, "sync without git", stderr, `(?m)^tally: hint: tally fetches and pushes with the git program: install git .*git -C REPO push REMOTE BRANCH`)
}
