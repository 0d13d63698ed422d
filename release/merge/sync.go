package merge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// DefaultSyncAttempts is how many times Sync fetches, replays and pushes
// when other maintainers keep pushing first.
const DefaultSyncAttempts = 5

// SyncOptions says how to bring a clone and its upstream together.
type SyncOptions struct {
	// Signer re-signs the replayed commits; it must be a maintainer key.
	// It is needed only when there are commits to replay (ErrNoSigner).
	Signer sigstore.Signer
	// NoPush stops after fetching and replaying.
	NoPush bool
	// Attempts bounds the tries when the upstream moves again before the
	// push lands; 0 means DefaultSyncAttempts.
	Attempts int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Backoff is the pause before attempt n (from 2); nil waits n×100 ms.
	Backoff func(n int) time.Duration
	// LockWait bounds how long to wait for another tally working on the
	// repository; 0 waits as long as ctx allows.
	LockWait time.Duration

	// beforePush, in tests, runs between the replay and the push.
	beforePush func(attempt int)
}

// ReplayedCommit is one unpublished commit replayed onto the upstream.
type ReplayedCommit struct {
	Old     string `json:"old"`
	New     string `json:"new,omitempty"` // "" when everything in it was upstream already
	Subject string `json:"subject"`
}

// Renumbered is an unpublished signature that moved to another number
// because the upstream took its number first.
type Renumbered struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// SyncResult is what Sync did.
type SyncResult struct {
	Branch   string `json:"branch"`
	Remote   string `json:"remote"`
	Upstream string `json:"upstream"` // the remote branch
	// UpstreamTip is the upstream's tip as last fetched ("" when the remote
	// branch does not exist yet).
	UpstreamTip string           `json:"upstream_tip,omitempty"`
	Before      string           `json:"before"`
	After       string           `json:"after"`
	Replayed    []ReplayedCommit `json:"replayed"`
	Renumbered  []Renumbered     `json:"renumbered"`
	// Dropped are unpublished signatures the upstream already has (the same
	// bytes, or a good signature by the same key for that digest).
	Dropped []DroppedFile `json:"dropped"`
	// FastForward is true when the branch only caught up with the upstream.
	FastForward bool `json:"fast_forward,omitempty"`
	Pushed      bool `json:"pushed"`
	Attempts    int  `json:"attempts"`

	// What earlier attempts replayed, by the ids and paths they gave.
	origCommit map[string]string // replayed commit -> the commit this clone made
	origPath   map[string]string // path after a replay -> the path this clone gave
}

// record adds what one replay did, told from the commits and paths this
// clone made, so that a replay of a replay (after a lost race) reads as
// one move.
func (r *SyncResult) record(rp *replayed) {
	if r.origCommit == nil {
		r.origCommit, r.origPath = map[string]string{}, map[string]string{}
	}
	orig := func(m map[string]string, k string) string {
		if o, ok := m[k]; ok {
			return o
		}
		return k
	}
	var commits []ReplayedCommit
	for _, c := range rp.commits {
		c.Old = orig(r.origCommit, c.Old)
		if c.New != "" {
			r.origCommit[c.New] = c.Old
		}
		commits = append(commits, c)
	}
	// Commits dropped by an earlier attempt stay dropped.
	for _, c := range r.Replayed {
		if c.New == "" {
			commits = append(commits, c)
		}
	}
	r.Replayed = commits

	final := map[string]string{}
	for _, m := range r.Renumbered {
		final[m.From] = m.To
	}
	for _, m := range rp.renumbered {
		from := orig(r.origPath, m.From)
		final[from] = m.To
		r.origPath[m.To] = from
	}
	r.Renumbered = r.Renumbered[:0]
	for from, to := range final {
		if from != to {
			r.Renumbered = append(r.Renumbered, Renumbered{From: from, To: to})
		}
	}
	sort.Slice(r.Renumbered, func(i, j int) bool { return r.Renumbered[i].From < r.Renumbered[j].From })
	for _, d := range rp.dropped {
		d.From = orig(r.origPath, d.From)
		r.Dropped = append(r.Dropped, d)
	}
}

// UpToDate reports whether nothing changed locally or on the remote.
func (r *SyncResult) UpToDate() bool { return r.Before == r.After && !r.Pushed }

// SyncAndPush is what tally sign --push does after signing: push the
// checked-out branch to its upstream, first replaying the new commits on top
// of what other maintainers pushed meanwhile (signed by signer, the key that
// just signed), retrying a bounded number of times.
func SyncAndPush(ctx context.Context, repo *gitstore.Repo, signer sigstore.Signer, now func() time.Time) (*SyncResult, error) {
	return Sync(ctx, repo, SyncOptions{Signer: signer, Now: now})
}

// Sync fetches the upstream of the checked-out branch and, when it moved,
// replays this clone's unpublished commits on top of it (as git rebase
// would), then pushes. Replaying keeps every published file as it is:
// only unpublished signatures are renumbered, to the first free number of
// their directory, and one the upstream already has (same bytes, or a good
// signature by the same primary key) is dropped; build records merge as a
// union. The replayed commits keep their author and message (plus what
// moved) and are signed by opts.Signer. When the push loses a race with
// another maintainer, Sync starts again, up to opts.Attempts times; after
// that the error wraps gitstore.ErrNonFastForward. A branch that is only
// behind is fast-forwarded; one that is only ahead is pushed.
func Sync(ctx context.Context, repo *gitstore.Repo, opts SyncOptions) (*SyncResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultSyncAttempts
	}
	if opts.Backoff == nil {
		opts.Backoff = func(n int) time.Duration { return time.Duration(n) * 100 * time.Millisecond }
	}
	unlock, err := policy.LockRepo(ctx, repo, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data

	branch, tip, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	if branch == "" {
		return nil, policy.ErrDetached
	}
	remote, merge, err := repo.Upstream(branch)
	if errors.Is(err, gitstore.ErrNoUpstream) {
		return nil, fmt.Errorf("%w: %s", ErrNoUpstream, branch.Short())
	}
	if err != nil {
		return nil, err
	}
	tracking := trackingRef(remote, merge)
	res := &SyncResult{Branch: branch.Short(), Remote: remote, Upstream: merge.String(), Before: tip.String(),
		Replayed: []ReplayedCommit{}, Renumbered: []Renumbered{}, Dropped: []DroppedFile{}}

	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		if attempt > 1 {
			select {
			case <-time.After(opts.Backoff(attempt)):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		upstream, err := fetchUpstream(ctx, repo, remote, merge, tracking)
		if err != nil {
			return res, err
		}
		res.UpstreamTip = ""
		if !upstream.IsZero() {
			res.UpstreamTip = upstream.String()
		}
		_, local, err := repo.Head()
		if err != nil {
			return res, fmt.Errorf("reading HEAD: %w", err)
		}
		push, err := catchUp(ctx, repo, branch, local, upstream, opts, res)
		if err != nil {
			return res, err
		}
		_, after, err := repo.Head()
		if err != nil {
			return res, fmt.Errorf("reading HEAD: %w", err)
		}
		res.After = after.String()
		if !push || opts.NoPush {
			return res, nil
		}
		if opts.beforePush != nil {
			opts.beforePush(attempt)
		}
		err = repo.Push(ctx, remote, branch.String()+":"+merge.String())
		if err == nil {
			res.Pushed = true
			return res, nil
		}
		if !errors.Is(err, gitstore.ErrNonFastForward) {
			// A push that lost the race at the remote's ref lock fails
			// with "failed to update ref", not as a non-fast-forward: it
			// is a race all the same when the upstream has moved.
			moved, ferr := fetchUpstream(ctx, repo, remote, merge, tracking)
			if ferr != nil || moved == upstream {
				return res, fmt.Errorf("pushing %s to %s: %w", branch.Short(), remote, err)
			}
			err = fmt.Errorf("%w: %s moved to %s meanwhile: %w", gitstore.ErrNonFastForward, merge.Short(), short(moved), err)
		}
		if attempt >= opts.Attempts {
			return res, fmt.Errorf("pushing %s to %s: other maintainers pushed first %d times in a row; the replayed commits are kept locally: %w",
				branch.Short(), remote, attempt, err)
		}
	}
}

// trackingRef is where Sync keeps the upstream's tip: the remote-tracking
// branch for a named remote, as git does.
func trackingRef(remote string, merge plumbing.ReferenceName) plumbing.ReferenceName {
	if remote != "" && !strings.ContainsAny(remote, "/:") && remote != "." {
		return plumbing.ReferenceName("refs/remotes/" + remote + "/" + merge.Short())
	}
	return plumbing.ReferenceName(sourceRefPrefix + "upstream/" + merge.Short())
}

// fetchUpstream fetches the upstream branch into tracking and returns its
// tip, zero when the remote has no such branch yet.
func fetchUpstream(ctx context.Context, repo *gitstore.Repo, remote string, merge, tracking plumbing.ReferenceName) (plumbing.Hash, error) {
	err := repo.Fetch(ctx, remote, "+"+merge.String()+":"+tracking.String())
	switch {
	case err == nil:
	case errors.Is(err, gitstore.ErrNoRemoteRef):
		return plumbing.ZeroHash, nil
	default:
		return plumbing.ZeroHash, fmt.Errorf("fetching %s from %s: %w", merge.Short(), remote, err)
	}
	h, err := repo.ResolveRevision(tracking.String())
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetching %s from %s: %w", merge.Short(), remote, err)
	}
	return h, nil
}

// catchUp brings the local branch onto the upstream: nothing, a
// fast-forward, or a replay. It reports whether there is something to push.
func catchUp(ctx context.Context, repo *gitstore.Repo, branch plumbing.ReferenceName, local, upstream plumbing.Hash, opts SyncOptions, res *SyncResult) (bool, error) {
	switch {
	case upstream.IsZero():
		return !local.IsZero(), nil
	case local == upstream:
		return false, nil
	}
	if behind, err := repo.IsAncestor(local, upstream); err != nil {
		return false, err
	} else if behind {
		res.FastForward = true
		err := repo.SetBranch(gitstore.BranchUpdate{Branch: branch, Old: local, New: upstream,
			Who: object.Signature{Name: "tally", When: opts.Now()}, Why: "tally sync: fast-forward to " + upstream.String(), Context: ctx})
		return false, err
	}
	if ahead, err := repo.IsAncestor(upstream, local); err != nil {
		return false, err
	} else if ahead {
		return true, nil
	}
	rp, err := replay(repo, upstream, local, opts.Signer, opts.Now().UTC().Truncate(time.Second))
	if err != nil {
		return false, err
	}
	res.record(rp)
	err = repo.SetBranch(gitstore.BranchUpdate{Branch: branch, Old: local, New: rp.tip,
		Who: rp.who, Why: "tally sync: replayed onto " + upstream.String(), Context: ctx})
	return true, err
}

// replayed is the outcome of a replay.
type replayed struct {
	tip        plumbing.Hash
	who        object.Signature
	commits    []ReplayedCommit
	renumbered []Renumbered
	dropped    []DroppedFile
}

// replay writes the commits reachable from local but not from onto again on
// top of onto, oldest first, and returns the new tip; no branch moves. Each
// commit's changes (against its first parent) are applied by the merge
// rules: the files of onto never change, unpublished signatures take the
// first free number, build records merge as a union, other files must not
// conflict. A commit left with no change is dropped.
func replay(repo *gitstore.Repo, onto, local plumbing.Hash, signer sigstore.Signer, now time.Time) (*replayed, error) {
	commits, err := repo.CommitsBetween(onto, local)
	if err != nil {
		return nil, err
	}
	st, err := policy.LoadCommit(repo, onto)
	if errors.Is(err, policy.ErrNoPolicy) {
		st, err = policy.LoadCommit(repo, local)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the upstream's trust policy: %w", err)
	}
	out := &replayed{tip: onto}
	if len(commits) == 0 {
		return out, nil
	}
	if out.who, err = maintainer(st.Keys, signer, now); err != nil {
		return nil, fmt.Errorf("replaying %d unpublished commit(s) onto %s: %w", len(commits), short(onto), err)
	}
	published, err := repo.Snapshot(onto)
	if err != nil {
		return nil, err
	}
	policy, keys := st.Policy, st.Keys
	verified := map[plumbing.Hash]verifyOutcome{}
	moved := map[string]string{} // original path -> path after the replay
	for _, c := range commits {
		parentTree := plumbing.ZeroHash
		if len(c.Parents) > 0 {
			p, err := repo.ReadCommit(c.Parents[0])
			if err != nil {
				return nil, err
			}
			parentTree = p.Tree
		}
		diff, err := repo.Diff(parentTree, c.Tree)
		if err != nil {
			return nil, err
		}
		base, err := repo.Snapshot(out.tip)
		if err != nil {
			return nil, err
		}
		a := newAssembly(repo, base, policy, keys, now)
		a.verified = verified
		subject, _, _ := strings.Cut(c.Message, "\n")
		fail := func(err error) error {
			return fmt.Errorf("replaying %s (%s) onto %s: %w", short(c.Hash), subject, short(onto), err)
		}
		for _, d := range diff {
			if a.isLookaside(d.Path) || isRecord(d.Path) {
				continue
			}
			if _, err := a.threeWay(d, base.Blob); err != nil {
				return nil, fail(err)
			}
		}
		if err := a.reloadPolicy(); err != nil {
			return nil, fail(err)
		}
		var refs []blobRef
		for _, d := range diff {
			if a.isLookaside(d.Path) && d.Action != gitstore.Deleted {
				refs = append(refs, blobRef{d.NewHash, d.Path})
			}
		}
		if err := a.verifyAll(refs); err != nil {
			return nil, fail(err)
		}
		var notes []string
		placed := map[string]string{} // new path -> the path in the replayed commit
		for _, d := range diff {
			switch {
			case a.isLookaside(d.Path) && d.Action == gitstore.Deleted:
				p := d.Path
				if to, ok := moved[p]; ok {
					p = to
				}
				if e, err := published.Stat(p); err == nil && e.Hash == d.OldHash {
					out.dropped = append(out.dropped, DroppedFile{Source: short(c.Hash), From: d.Path, Reason: DropDeleted, Existing: p})
					continue
				}
				if cur, err := a.entry(p); err != nil {
					return nil, fail(err)
				} else if cur == d.OldHash {
					a.set(gitstore.Change{Path: p, Delete: true})
				}
			case a.isLookaside(d.Path):
				if !quorum.IsRegular(d.NewMode) {
					return nil, fail(fmt.Errorf("%s: %w: it is a %s, and tally writes only regular files", d.Path, ErrConflict, d.NewMode))
				}
				data, err := base.Blob(d.NewHash)
				if err != nil {
					return nil, fail(err)
				}
				v := a.judge(d.Path, d.NewMode, d.NewHash)
				good := v.OK()
				if !good {
					// The guard refuses it: it never reaches the upstream.
					why := string(v.Problem) + ": " + v.Message
					out.dropped = append(out.dropped, DroppedFile{Source: short(c.Hash), From: d.Path, Reason: DropRefused, Existing: why})
					notes = append(notes, fmt.Sprintf("dropped %s: %s", d.Path, why))
					continue
				}
				dir, name := cutLastSlash(d.Path)
				var pl placement
				if _, numbered := signatureNumber(name); numbered && v.Problem != sigstore.KindMalformedPath {
					pl, err = a.place(dir, d.NewHash, data, v, good)
				} else {
					pl, err = a.placeAt(d.Path, d.NewHash, data)
				}
				if err != nil {
					return nil, fail(err)
				}
				if pl.path == "" {
					out.dropped = append(out.dropped, DroppedFile{Source: short(c.Hash), From: d.Path, Reason: pl.reason, Existing: pl.existing})
					notes = append(notes, fmt.Sprintf("dropped %s: %s %s", d.Path, pl.reason, pl.existing))
					continue
				}
				moved[d.Path] = pl.path
				placed[pl.path] = d.Path
				if pl.path != d.Path {
					out.renumbered = append(out.renumbered, Renumbered{From: d.Path, To: pl.path})
					notes = append(notes, fmt.Sprintf("%s -> %s", d.Path, pl.path))
				}
			case isRecord(d.Path) && d.Action != gitstore.Deleted:
				data, err := base.Blob(d.NewHash)
				if err != nil {
					return nil, fail(err)
				}
				cur, ok, err := a.read(d.Path)
				if err != nil {
					return nil, fail(err)
				}
				if !ok {
					a.set(gitstore.Change{Path: d.Path, Data: data})
					continue
				}
				merged, changed, err := record.UnionRecord(cur, data)
				if err != nil {
					return nil, fail(fmt.Errorf("%s: %w", d.Path, err))
				}
				if changed {
					a.set(gitstore.Change{Path: d.Path, Data: merged})
				}
			}
		}
		// The directory rules where the files landed, as the guard applies
		// them: a file that would not count there is left out too.
		if len(placed) > 0 {
			added := make(map[string]bool, len(placed))
			for p := range placed {
				added[p] = true
			}
			refused, err := a.refusedAdded(added)
			if err != nil {
				return nil, fail(err)
			}
			paths := make([]string, 0, len(refused))
			for p := range refused {
				paths = append(paths, p)
			}
			slices.Sort(paths)
			for _, p := range paths {
				v, from := refused[p], placed[p]
				delete(a.changes, p)
				delete(moved, from)
				out.renumbered = slices.DeleteFunc(out.renumbered, func(r Renumbered) bool { return r.To == p })
				why := string(v.Problem) + ": " + v.Message
				out.dropped = append(out.dropped, DroppedFile{Source: short(c.Hash), From: from, Reason: DropRefused, Existing: why})
				notes = append(notes, fmt.Sprintf("dropped %s: %s", from, why))
			}
		}
		policy, keys = a.policy, a.keys
		changes := a.sortedChanges()
		if len(changes) == 0 {
			out.commits = append(out.commits, ReplayedCommit{Old: c.Hash.String(), Subject: subject})
			continue
		}
		msg := c.Message
		if len(notes) > 0 {
			msg = strings.TrimRight(msg, "\n") + "\n\nReplayed onto " + onto.String() + " by tally sync:\n" + strings.Join(notes, "\n") + "\n"
		}
		h, err := repo.WriteCommit(gitstore.CommitRequest{
			Parents:   []plumbing.Hash{out.tip},
			Changes:   changes,
			Message:   msg,
			Author:    c.Author,
			Committer: out.who,
			Sign:      signer.SignDetached,
		})
		if err != nil {
			return nil, fail(err)
		}
		out.tip = h
		out.commits = append(out.commits, ReplayedCommit{Old: c.Hash.String(), New: h.String(), Subject: subject})
	}
	return out, nil
}

// short abbreviates a commit id for messages.
func short(h plumbing.Hash) string { return h.String()[:12] }
