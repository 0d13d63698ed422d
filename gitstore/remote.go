package gitstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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
// the remote's configured ones. Being up to date already is not an error. A
// refspec without "+" that would rewind a reference gives an error wrapping
// ErrNonFastForward. Fetching into the branch checked out in the working
// tree is refused, as git refuses it. Local remotes need git's
// git-upload-pack, as with go-git.
func (r *Repo) Fetch(ctx context.Context, remote string, refspecs ...string) error {
	specs, err := parseRefSpecs(refspecs)
	if err != nil {
		return fmt.Errorf("fetching from %s: %w", remote, err)
	}
	if err := r.refuseCheckedOut(specs); err != nil {
		return fmt.Errorf("fetching from %s: %w", remote, err)
	}
	var rejected []string
	err = r.withRemote(remote, func(rem *git.Remote) error {
		if len(specs) == 0 {
			specs = rem.Config().Fetch
		}
		// go-git skips a reference that would not fast-forward without
		// saying so when tags are not fetched; tally must not fetch tags
		// (go-git would move existing tags), so it finds them itself.
		var offered []*plumbing.Reference
		if hasUnforced(specs) {
			var err error
			if offered, err = rem.ListContext(ctx, &git.ListOptions{}); err != nil {
				return err
			}
		}
		err := rem.FetchContext(ctx, &git.FetchOptions{RemoteName: rem.Config().Name, RefSpecs: specs, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return err
		}
		rejected = r.notUpdated(specs, offered)
		return nil
	})
	// New packs may have arrived.
	r.objects.Reset()
	if err == nil && len(rejected) > 0 {
		return fmt.Errorf("fetching from %s: %s: %w", remote, strings.Join(rejected, ", "), ErrNonFastForward)
	}
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, git.ErrForceNeeded):
		return fmt.Errorf("fetching from %s: %w: %w", remote, ErrNonFastForward, err)
	default:
		return fmt.Errorf("fetching from %s: %w", remote, err)
	}
}

// Push pushes refspecs such as "refs/heads/main:refs/heads/main" (none
// means the remote's configured push refspecs, or git's defaults) to remote
// (a configured remote's name, or a URL or path). Being up to date already
// is not an error; an update the remote refuses because it would lose
// commits gives an error wrapping ErrNonFastForward. Local remotes need
// git's git-receive-pack, as with go-git.
func (r *Repo) Push(ctx context.Context, remote string, refspecs ...string) error {
	specs, err := parseRefSpecs(refspecs)
	if err != nil {
		return fmt.Errorf("pushing to %s: %w", remote, err)
	}
	err = r.withRemote(remote, func(rem *git.Remote) error {
		return rem.PushContext(ctx, &git.PushOptions{RemoteName: rem.Config().Name, RefSpecs: specs})
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case isNonFastForward(err):
		return fmt.Errorf("pushing to %s: %w: %w", remote, ErrNonFastForward, err)
	default:
		return fmt.Errorf("pushing to %s: %w", remote, err)
	}
}

// isNonFastForward recognises go-git's and the remote's ways of saying that
// an update would lose commits; go-git gives no sentinel for them.
func isNonFastForward(err error) bool {
	if errors.Is(err, git.ErrForceNeeded) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "stale info"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func hasUnforced(specs []config.RefSpec) bool {
	for _, spec := range specs {
		if !spec.IsForceUpdate() {
			return true
		}
	}
	return false
}

// notUpdated lists the local references that unforced refspecs should have
// set to the offered remote references but that still differ: go-git left
// them because the update was not a fast-forward. The caller holds storeMu.
func (r *Repo) notUpdated(specs []config.RefSpec, offered []*plumbing.Reference) []string {
	var out []string
	for _, spec := range specs {
		if spec.IsForceUpdate() {
			continue
		}
		for _, ref := range offered {
			if ref.Type() != plumbing.HashReference || !spec.Match(ref.Name()) {
				continue
			}
			dst := spec.Dst(ref.Name())
			if cur, err := currentRef(r.storage.Reference(dst)); err == nil && cur != ref.Hash() {
				out = append(out, fmt.Sprintf("%s would not fast-forward to %s", dst, ref.Name()))
			}
		}
	}
	return out
}

// withRemote calls fn, holding storeMu, with the configured remote called
// name, or an anonymous one for a URL or path.
func (r *Repo) withRemote(name string, fn func(*git.Remote) error) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	rem, err := r.repo.Remote(name)
	switch {
	case errors.Is(err, git.ErrRemoteNotFound) && strings.ContainsAny(name, "/:"):
		rem = git.NewRemote(r.storage, &config.RemoteConfig{Name: "anonymous", URLs: []string{name}})
	case errors.Is(err, git.ErrRemoteNotFound):
		return fmt.Errorf("no remote called %q", name)
	case err != nil:
		return err
	}
	return fn(r.resolveLocalURLs(rem))
}

// resolveLocalURLs makes relative local paths among a remote's URLs absolute,
// as git reads them: relative to the working tree, or to the git directory of
// a bare repository, never to the process's current directory.
func (r *Repo) resolveLocalURLs(rem *git.Remote) *git.Remote {
	base := r.workDir
	if base == "" {
		base = r.gitDir
	}
	cfg := *rem.Config()
	changed := false
	cfg.URLs = append([]string(nil), cfg.URLs...)
	for i, u := range cfg.URLs {
		if isRelativeLocalPath(u) && base != "" {
			cfg.URLs[i] = filepath.Join(base, filepath.FromSlash(u))
			changed = true
		}
	}
	if !changed {
		return rem
	}
	return git.NewRemote(r.storage, &cfg)
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
