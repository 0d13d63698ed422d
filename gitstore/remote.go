package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
)

// ErrNoUpstream is returned by Upstream for a branch with no configured
// upstream.
var ErrNoUpstream = errors.New("no upstream configured")

// AddRemote configures a remote called name with one URL (a path, file://,
// https:// or ssh address) and git's default fetch refspec.
func (r *Repo) AddRemote(name, url string) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	_, err := r.repo.CreateRemote(&config.RemoteConfig{
		Name:  name,
		URLs:  []string{url},
		Fetch: []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/*:refs/remotes/%s/*", name))},
	})
	if err != nil {
		return fmt.Errorf("adding remote %s: %w", name, err)
	}
	return nil
}

// Upstream returns the remote and the remote branch that a local branch
// tracks (branch.<name>.remote and branch.<name>.merge in the config), or an
// error wrapping ErrNoUpstream.
func (r *Repo) Upstream(branch plumbing.ReferenceName) (remote string, merge plumbing.ReferenceName, err error) {
	full, err := branchName(string(branch))
	if err != nil {
		return "", "", err
	}
	r.storeMu.Lock()
	cfg, err := r.storage.Config()
	r.storeMu.Unlock()
	if err != nil {
		return "", "", fmt.Errorf("reading config: %w", err)
	}
	b, ok := cfg.Branches[full.Short()]
	if !ok || b.Remote == "" || b.Merge == "" {
		return "", "", fmt.Errorf("branch %s: %w", full.Short(), ErrNoUpstream)
	}
	return b.Remote, b.Merge, nil
}

// SetUpstream records that branch tracks merge on remote.
func (r *Repo) SetUpstream(branch plumbing.ReferenceName, remote string, merge plumbing.ReferenceName) error {
	full, err := branchName(string(branch))
	if err != nil {
		return err
	}
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	cfg, err := r.storage.Config()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfg.Branches[full.Short()] = &config.Branch{Name: full.Short(), Remote: remote, Merge: merge}
	if err := r.storage.SetConfig(cfg); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	return nil
}

// Fetch fetches from remote (a configured remote's name, or a URL or path)
// with refspecs such as "+refs/heads/*:refs/remotes/origin/*"; none means
// the remote's configured ones. It runs the git program (see [Repo.Push]),
// without tags. Being up to date already is not an error. A refspec
// without "+" that would rewind a reference gives an error wrapping
// ErrNonFastForward; a source the remote does not have, one wrapping
// ErrNoRemoteRef. Fetching into the branch checked out in the working tree
// is refused, as git refuses it.
func (r *Repo) Fetch(ctx context.Context, remote string, refspecs ...string) error {
	if err := r.fetch(ctx, remote, refspecs); err != nil {
		return fmt.Errorf("fetching from %s: %w", remote, err)
	}
	return nil
}

func (r *Repo) fetch(ctx context.Context, remote string, refspecs []string) error {
	specs, err := parseRefSpecs(refspecs)
	if err != nil {
		return err
	}
	if err := r.refuseCheckedOut(specs); err != nil {
		return err
	}
	target, err := r.remoteTarget(remote)
	if err != nil {
		return err
	}
	args := []string{"fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--", target}
	res, err := r.runGit(ctx, append(args, refspecs...))
	// New packs and references may have arrived, even from a fetch that
	// failed in part.
	r.objects.Reset()
	if err != nil {
		return err
	}
	if res.exit == 0 {
		return nil
	}
	var rejected, missing []string
	for _, line := range res.lines {
		switch {
		case strings.Contains(line, "[rejected]") && strings.Contains(line, "non-fast-forward"):
			rejected = append(rejected, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "! [rejected]")))
		case strings.Contains(line, "couldn't find remote ref"):
			_, ref, _ := strings.Cut(line, "couldn't find remote ref ")
			missing = append(missing, strings.TrimSpace(ref))
		}
	}
	switch {
	case len(rejected) > 0:
		return fmt.Errorf("%s: %w", strings.Join(rejected, ", "), ErrNonFastForward)
	case len(missing) > 0:
		return fmt.Errorf("%s: %w", strings.Join(missing, ", "), ErrNoRemoteRef)
	}
	return res.failure()
}

// Push pushes refspecs such as "refs/heads/main:refs/heads/main" (none
// means the remote's configured push refspecs, or git's defaults) to remote
// (a configured remote's name, or a URL or path).
//
// Fetch and Push run the git program, as git push would run, so that the
// user's whole git setup applies: credential helpers, ssh configuration,
// keys and known hosts, GIT_SSH_COMMAND and core.sshCommand, url.insteadOf,
// proxies and http.* settings, and the pre-push hook. The lines the remote
// sends (its hooks' output, "remote: ...") are copied as they arrive to the
// writer set with [Repo.SetRemoteOutput], or kept in the error when none is
// set. Without git on PATH they fail with an error wrapping ErrNoGit.
//
// Being up to date already is not an error; an update the remote refuses
// because it would lose commits gives an error wrapping ErrNonFastForward;
// one its hooks or rules refuse, an error wrapping ErrRemoteRejected.
func (r *Repo) Push(ctx context.Context, remote string, refspecs ...string) error {
	if err := r.push(ctx, remote, refspecs); err != nil {
		return fmt.Errorf("pushing to %s: %w", remote, err)
	}
	return nil
}

func (r *Repo) push(ctx context.Context, remote string, refspecs []string) error {
	if _, err := parseRefSpecs(refspecs); err != nil {
		return err
	}
	target, err := r.remoteTarget(remote)
	if err != nil {
		return err
	}
	args := []string{"push", "--porcelain", "--", target}
	res, err := r.runGit(ctx, append(args, refspecs...))
	if err != nil {
		return err
	}
	// --porcelain: "<flag>\t<from>:<to>\t<summary> (<reason>)" per ref.
	var nonFF, refused []string
	for _, line := range strings.Split(string(res.stdout), "\n") {
		flag, rest, ok := strings.Cut(line, "\t")
		if !ok || flag != "!" {
			continue
		}
		ref, summary, _ := strings.Cut(rest, "\t")
		what := ref + " " + summary
		switch {
		case strings.HasPrefix(summary, "[rejected]") || strings.Contains(summary, "(stale info)"):
			nonFF = append(nonFF, what)
		default:
			refused = append(refused, what)
		}
	}
	switch {
	case len(refused) > 0:
		return fmt.Errorf("%w: %s%s", ErrRemoteRejected, strings.Join(append(refused, nonFF...), ", "), res.remoteSaid())
	case len(nonFF) > 0:
		return fmt.Errorf("%s: %w", strings.Join(nonFF, ", "), ErrNonFastForward)
	case res.exit != 0:
		return res.failure()
	}
	return nil
}

// SetRemoteOutput sets where Fetch and Push copy the lines the remote sends
// (its hooks' output, each line starting "remote: " as git prints it). With
// none set, they are kept in the error of a failed fetch or push.
func (r *Repo) SetRemoteOutput(w io.Writer) {
	r.remoteMu.Lock()
	defer r.remoteMu.Unlock()
	r.remoteOut = w
}

// remoteTarget is what to name on git's command line for remote: a
// configured remote's name as it is, so that git applies its whole
// configuration, or a URL or path, a relative path made absolute against
// the repository.
func (r *Repo) remoteTarget(name string) (string, error) {
	if r.gitDir == "" {
		return "", ErrInMemory
	}
	r.storeMu.Lock()
	_, err := r.repo.Remote(name)
	r.storeMu.Unlock()
	switch {
	case err == nil:
		return name, nil
	case errors.Is(err, git.ErrRemoteNotFound) && strings.ContainsAny(name, "/:"):
		if isRelativeLocalPath(name) {
			return filepath.Join(r.baseDir(), filepath.FromSlash(name)), nil
		}
		return name, nil
	case errors.Is(err, git.ErrRemoteNotFound):
		return "", fmt.Errorf("no remote called %q", name)
	default:
		return "", err
	}
}

// baseDir is where git runs and what relative remote paths are relative
// to: the working tree, or the git directory of a bare repository.
func (r *Repo) baseDir() string {
	if r.workDir != "" {
		return r.workDir
	}
	return r.gitDir
}

// gitResult is what a git run left: its exit status, standard output, and
// the lines of its standard error that did not come from the remote.
type gitResult struct {
	args   []string
	exit   int
	stdout []byte
	lines  []string
	remote []string // the remote's lines when no output writer was set
}

// failure describes a git run that failed for none of the reasons its
// caller recognises: git's own words, and what the remote said.
func (g *gitResult) failure() error {
	msg := strings.TrimSpace(strings.Join(g.lines, "\n"))
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", g.exit)
	}
	return fmt.Errorf("%w: git %s: %s%s", ErrGit, g.args[0], msg, g.remoteSaid())
}

func (g *gitResult) remoteSaid() string {
	if len(g.remote) == 0 {
		return ""
	}
	return "\n" + strings.Join(g.remote, "\n")
}

// gitEnvStrip are the variables that would point git at another
// repository, set when tally runs inside a git hook.
var gitEnvStrip = []string{"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_OBJECT_DIRECTORY=",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES=", "GIT_QUARANTINE_PATH=", "GIT_COMMON_DIR=", "GIT_PREFIX=",
	"GIT_NAMESPACE=", "GIT_CEILING_DIRECTORIES=", "GIT_DISCOVERY_ACROSS_FILESYSTEM="}

// runGit runs git with args on this repository, with the caller's
// environment (so the user's git configuration and credentials apply) but
// for the variables that would name another repository, and messages in
// English, which Fetch reads. The remote's lines are copied to the remote
// output as they arrive. A git that could not be started gives an error;
// one that ran and failed, a result with its exit status.
func (r *Repo) runGit(ctx context.Context, args []string) (*gitResult, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoGit, err)
	}
	// Housekeeping stays off: an automatic gc could repack away the pack
	// files this process has open.
	full := append([]string{"-c", "gc.auto=0", "-c", "maintenance.auto=false"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = r.baseDir()
	parent := os.Environ()
	env := make([]string, 0, len(parent)+4)
	for _, kv := range parent {
		if !hasAnyPrefix(kv, gitEnvStrip) && !strings.HasPrefix(kv, "LC_ALL=") && !strings.HasPrefix(kv, "LANGUAGE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GIT_DIR="+r.gitDir, "LC_ALL=C", "LANGUAGE=C")
	if r.workDir != "" {
		env = append(env, "GIT_WORK_TREE="+r.workDir)
	}
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("running git %s: %w", args[0], err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running git %s: %w", args[0], err)
	}
	res := &gitResult{args: args}
	r.remoteMu.Lock()
	out := r.remoteOut
	r.remoteMu.Unlock()
	// git ends progress lines with \r; a line is what either ends.
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	sc.Split(scanLines)
	const keep = 200 // lines kept for the error; the rest only counted
	dropped := 0
	for sc.Scan() {
		// git pads the remote's lines with spaces (or a clear-to-end on a
		// terminal) to overwrite progress; the padding is not theirs.
		line := strings.TrimRight(strings.TrimSuffix(sc.Text(), "\x1b[K"), " ")
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "remote: ") || line == "remote:":
			if out != nil {
				fmt.Fprintln(out, line)
			} else if len(res.remote) < keep {
				res.remote = append(res.remote, line)
			} else {
				dropped++
			}
		case len(res.lines) < keep:
			res.lines = append(res.lines, line)
		default:
			dropped++
		}
	}
	if dropped > 0 {
		res.lines = append(res.lines, fmt.Sprintf("(%d more lines)", dropped))
	}
	// Drain what a line too long for the scanner left, so git can exit.
	_, _ = io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	res.stdout = stdout.Bytes()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("running git %s: %w", args[0], ctx.Err())
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		res.exit = exitErr.ExitCode()
	default:
		return nil, fmt.Errorf("running git %s: %w", args[0], err)
	}
	return res, nil
}

// scanLines splits at \n and at \r, git's two ways of ending a line.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isRelativeLocalPath reports whether a remote URL is a relative path on
// this machine: no scheme, not scp-like (host:path), not absolute.
func isRelativeLocalPath(u string) bool {
	if u == "" || filepath.IsAbs(u) || strings.Contains(u, "://") {
		return false
	}
	colon, slash := strings.IndexByte(u, ':'), strings.IndexByte(u, '/')
	return colon < 0 || (slash >= 0 && slash < colon)
}

func parseRefSpecs(refspecs []string) ([]config.RefSpec, error) {
	var specs []config.RefSpec
	for _, s := range refspecs {
		spec := config.RefSpec(s)
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("refspec %q: %w", s, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// refuseCheckedOut refuses refspecs that could move the branch checked out
// in the working tree behind its index's back.
func (r *Repo) refuseCheckedOut(specs []config.RefSpec) error {
	if r.worktree == nil {
		return nil
	}
	head, _, err := r.Head()
	if err != nil || head == "" {
		return err
	}
	for _, spec := range specs {
		_, dst, _ := strings.Cut(strings.TrimPrefix(string(spec), "+"), ":")
		prefix, suffix, wildcard := strings.Cut(dst, "*")
		if dst == string(head) || wildcard && strings.HasPrefix(string(head), prefix) && strings.HasSuffix(string(head), suffix) {
			return fmt.Errorf("refspec %s could move the checked-out branch %s", spec, head)
		}
	}
	return nil
}
