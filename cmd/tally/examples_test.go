package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/internal/testkeys"
)

// workflowScript returns the shell script between the "tally check: begin"
// and "end" markers of a CI workflow in examples/, unindented.
func workflowScript(t *testing.T, file string) (string, string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var lines []string
	in := false
	indent := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "# tally check: begin":
			in, indent = true, line[:len(line)-len(strings.TrimLeft(line, " "))]
		case trimmed == "# tally check: end":
			in = false
		case in:
			lines = append(lines, strings.TrimPrefix(line, indent))
		}
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no tally check script", file)
	}
	return text, strings.Join(lines, "\n") + "\n"
}

// TestExampleWorkflows runs the check step of each example CI workflow, as
// the CI runner would, on a pull request that a maintainer signed (it
// passes) and on one that deletes a signature (it fails with tally's exit
// code and refusal lines).
func TestExampleWorkflows(t *testing.T) {
	interop.Require(t, "git", "bash", "gpg")
	if _, err := exec.LookPath("tally"); err != nil {
		t.Fatal("tally is not on PATH: TestMain puts it there")
	}
	for _, file := range []string{"../../examples/github/tally-check.yml", "../../examples/forgejo/tally-check.yml"} {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			text, script := workflowScript(t, file)
			for _, want := range []string{"pull_request:", "ref: ${{ github.event.pull_request.head.sha }}", "fetch-depth: 0",
				"BASE_SHA: ${{ github.event.pull_request.base.sha }}", "HEAD_SHA: ${{ github.event.pull_request.head.sha }}",
				`go install "github.com/tally-sig/tally/cmd/tally@${TALLY_COMMIT}"`, "extra_paths = [\"." + filepath.Base(filepath.Dir(file)) + "/workflows/tally-check.yml\"]",
				"uses: actions/checkout@v4", "uses: actions/setup-go@v5"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %q", file, want)
				}
			}
			root := t.TempDir()
			repo := filepath.Join(root, "sigs")
			keys := filepath.Join(root, "keys")
			if err := os.Mkdir(keys, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"alice", "bob"} {
				if err := os.WriteFile(filepath.Join(keys, n+".pub.asc"), testkeys.Public(n), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(keys, n+".sec.asc"), testkeys.Secret(n), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"TALLY_TEST_NOW=2027-01-01T12:00:00Z", "GIT_AUTHOR_DATE=2027-01-01T12:00:00Z", "GIT_COMMITTER_DATE=2027-01-01T12:00:00Z"}
			interop.Run(t, env, "tally", "init", "--repo", repo, "--threshold", "1", "--key-file", filepath.Join(keys, "alice.pub.asc"),
				"--key-file", filepath.Join(keys, "bob.pub.asc"), "--key", filepath.Join(keys, "alice.sec.asc"))
			base := strings.TrimSpace(interop.Git(t, repo, env, "rev-parse", "HEAD"))
			out := filepath.Join(root, "out")
			if _, err := sample.Write(out, sample.Spec{Name: "core-hello", Tag: "1.0", Seed: "ci"}); err != nil {
				t.Fatal(err)
			}
			interop.Git(t, repo, env, "checkout", "-q", "-b", "pr")
			interop.Run(t, env, "tally", "sign", "--repo", repo, "--release", "1.0", "--key", filepath.Join(keys, "bob.sec.asc"), "--out", out)
			run := func(head string) (string, error) {
				cmd := interop.Command(t, repo, append(env, "BASE_SHA="+base, "HEAD_SHA="+head), "bash", "-c", script)
				b, err := cmd.CombinedOutput()
				return string(b), err
			}
			head := strings.TrimSpace(interop.Git(t, repo, env, "rev-parse", "HEAD"))
			// The base branch moves on meanwhile: the check starts at the merge base.
			interop.Git(t, repo, env, "checkout", "-q", "main")
			interop.Git(t, repo, env, "commit", "-q", "--allow-empty", "-m", "elsewhere")
			base = strings.TrimSpace(interop.Git(t, repo, env, "rev-parse", "HEAD"))
			if got, err := run(head); err != nil || !strings.Contains(got, "checked 1 commit(s) and 1 new signature(s): all accepted") {
				t.Fatalf("a signed pull request failed the check: %v\n%s", err, got)
			}
			// The deletion is signed by a maintainer, so that its content is
			// what the check refuses (an unsigned commit's content is not read).
			gpgEnv := append(env, "GNUPGHOME="+interop.GPGHome(t, testkeys.Secret("bob")))
			interop.Git(t, repo, gpgEnv, "checkout", "-q", "pr")
			interop.Git(t, repo, gpgEnv, "rm", "-q", "-r", "stagex")
			interop.Git(t, repo, gpgEnv, "-c", "user.signingkey="+testkeys.Fingerprint("bob"), "commit", "-q", "-S", "-m", "delete")
			head = strings.TrimSpace(interop.Git(t, repo, env, "rev-parse", "HEAD"))
			got, err := run(head)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 77 || !strings.Contains(got, "tally: refused: stagex/core-hello@sha256=") {
				t.Errorf("a deleting pull request: %v\n%s", err, got)
			}
		})
	}
}

// TestExampleWorkflowsLint runs actionlint over the example workflows (the
// Forgejo one runs on a runner labelled "docker").
func TestExampleWorkflowsLint(t *testing.T) {
	t.Parallel()
	interop.Require(t, "actionlint")
	cfg := filepath.Join(t.TempDir(), "actionlint.yaml")
	if err := os.WriteFile(cfg, []byte("self-hosted-runner:\n  labels:\n    - docker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{"../../examples/github/tally-check.yml", "../../examples/forgejo/tally-check.yml"}
	if out, err := interop.RunErr(t, "", nil, "actionlint", append([]string{"-no-color", "-config-file", cfg}, files...)...); err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
	// Not vacuous: a workflow with a mistake is refused.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.nosuch.sha }}\n        uses: actions/checkout@v4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := interop.RunErr(t, "", nil, "actionlint", "-no-color", bad); err == nil {
		t.Error("actionlint accepted a broken workflow")
	}
	// The forge's runner must have node for actions/checkout: not the
	// golang image.
	data, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "image: node:") {
		t.Error("the Forgejo example does not run in an image with node")
	}
}
