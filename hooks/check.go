package hooks

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// Options configures a check.
type Options struct {
	// Now is the time of the check. When set, every key must be valid now as
	// well as at each commit's committer time, so that a key revoked or
	// expired since cannot bring in backdated commits. Hooks and CI set it;
	// nil judges keys only at each commit's time (auditing old history).
	Now func() time.Time
	// Bootstrap accepts, unjudged, the commits whose first parent holds no
	// trust policy: the history up to the commit that creates tally.toml,
	// pushed into an empty repository. Otherwise such a commit is refused.
	Bootstrap bool
	// Parallel is how many signatures are verified at once; GOMAXPROCS
	// when 0.
	Parallel int
}

// checker judges commits for one check; it caches trust policies and
// signature verifications across the commits it judges.
type checker struct {
	repo   *gitstore.Repo
	opts   Options
	now    time.Time
	hasNow bool
	states states
	res    *Result

	mu       sync.Mutex
	verified map[verifyKey]verifyResult
}

type verifyKey struct {
	blob plumbing.Hash
	keys string // Keyring.ID
}

type verifyResult struct {
	sig sigstore.Signature
	err error
}

func newChecker(repo *gitstore.Repo, opts Options) *checker {
	c := &checker{repo: repo, opts: opts, res: &Result{Refusals: []Refusal{}}, verified: map[verifyKey]verifyResult{}}
	if opts.Now != nil {
		c.now, c.hasNow = opts.Now().UTC(), true
	}
	if c.opts.Parallel <= 0 {
		c.opts.Parallel = runtime.GOMAXPROCS(0)
	}
	return c
}

// Check judges every commit reachable from newTip but not from oldTip
// (oldTip zero: all of newTip's history), each against the trust policy of
// its first parent and of oldTip (the repository's current maintainers),
// and refuses the range when oldTip is not an ancestor of newTip: that
// update would rewrite published history. Approvals of a policy change may
// be in the changing commit's tree or in newTip's. The error is for
// failures to read the repository; refusals are in the Result.
func Check(repo *gitstore.Repo, oldTip, newTip plumbing.Hash, opts Options) (*Result, error) {
	c := newChecker(repo, opts)
	newCommit, refusal, err := c.peel(newTip)
	if err != nil {
		return nil, err
	}
	if refusal != "" {
		c.res.refuse(Refusal{Path: newTip.String(), Rule: RuleObject, Reason: refusal})
		return c.res, nil
	}
	if !oldTip.IsZero() {
		ok, err := repo.IsAncestor(oldTip, newCommit)
		if err != nil {
			return nil, fmt.Errorf("checking %s..%s: %w", short(oldTip), short(newCommit), err)
		}
		if !ok {
			c.res.refuse(Refusal{Path: short(oldTip) + ".." + short(newCommit), Rule: RuleHistory,
				Reason: "non-fast-forward: the new tip does not contain the old one, so this update would rewrite published history (force-push); merge instead (tally merge, or git merge), and for a pull request check from the merge base"})
		}
	}
	commits, err := repo.CommitsBetween(oldTip, newCommit)
	if err != nil {
		return nil, fmt.Errorf("listing the commits of %s..%s: %w", short(oldTip), short(newCommit), err)
	}
	base, err := c.baseAt(oldTip)
	if err != nil {
		return nil, err
	}
	tip, err := repo.Snapshot(newCommit)
	if err != nil {
		return nil, err
	}
	for _, info := range commits {
		if err := c.judgeCommit(info, "", tip, base); err != nil {
			return nil, err
		}
	}
	return c.res, nil
}

// CheckCommit judges one commit against the trust policy of its first
// parent, as Check judges each commit of a range.
func CheckCommit(repo *gitstore.Repo, commit plumbing.Hash, opts Options) (*Result, error) {
	c := newChecker(repo, opts)
	info, err := repo.ReadCommit(commit)
	if err != nil {
		return nil, err
	}
	tip, err := repo.Snapshot(commit)
	if err != nil {
		return nil, err
	}
	if err := c.judgeCommit(info, "", tip, nil); err != nil {
		return nil, err
	}
	return c.res, nil
}

// baseAt loads the trust policy at commit, the repository's current
// maintainers; nil when commit is zero or holds no policy.
func (c *checker) baseAt(commit plumbing.Hash) (*policyState, error) {
	if commit.IsZero() {
		return nil, nil
	}
	snap, err := c.repo.Snapshot(commit)
	if err != nil {
		return nil, err
	}
	st, err := c.states.load(snap)
	if err != nil {
		if errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy) {
			return nil, nil
		}
		return nil, err
	}
	return st, nil
}

// peel returns the commit h names (h itself, or the commit an annotated tag
// points at), or says why h names no commit.
func (c *checker) peel(h plumbing.Hash) (plumbing.Hash, string, error) {
	if _, err := c.repo.ReadCommit(h); err == nil {
		return h, "", nil
	}
	peeled, err := c.repo.ResolveRevision(h.String())
	if err != nil {
		return plumbing.ZeroHash, fmt.Sprintf("%s is not a commit or a tag of a commit: %v", short(h), err), nil
	}
	if _, err := c.repo.ReadCommit(peeled); err != nil {
		if errors.Is(err, gitstore.ErrBadObject) {
			return plumbing.ZeroHash, fmt.Sprintf("malformed commit %s: %v", short(peeled), err), nil
		}
		return plumbing.ZeroHash, "", err
	}
	return peeled, "", nil
}

// job is one change to judge: a commit against its first parent, or the
// staged index against HEAD.
type job struct {
	ref     string
	commit  plumbing.Hash // zero for the index
	parent  *policyState  // the trust policy before the change
	base    *policyState  // the repository's current trust policy; nil: parent
	oldTree tree
	newTree tree
	merged  []tree // the other parents of a merge commit, whose changes it brings in
	tip     tree   // also searched for approvals; nil: newTree only
	changes []gitstore.DiffEntry
	signer  string // the commit signer's primary fingerprint; "" when unknown
	when    time.Time
	out     []Refusal
}

func (j *job) refuse(path string, rule Rule, format string, args ...any) {
	j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: path, Rule: rule, Reason: fmt.Sprintf(format, args...)})
}

// judgeCommit judges one commit: its signature, then every path it changes
// relative to its first parent.
func (c *checker) judgeCommit(info *gitstore.CommitInfo, ref string, tip tree, base *policyState) error {
	c.res.Commits++
	j := &job{ref: ref, commit: info.Hash, tip: tip, when: info.Committer.When.UTC()}
	parentHash := plumbing.ZeroHash
	if len(info.Parents) > 0 {
		parentHash = info.Parents[0]
	}
	parentSnap, err := c.repo.Snapshot(parentHash)
	if err != nil {
		return err
	}
	newSnap, err := c.repo.Snapshot(info.Hash)
	if err != nil {
		return err
	}
	j.oldTree, j.newTree = parentSnap, newSnap
	for _, p := range info.Parents[min(1, len(info.Parents)):] {
		snap, err := c.repo.Snapshot(p)
		if err != nil {
			return err
		}
		j.merged = append(j.merged, snap)
	}
	j.parent, err = c.states.load(parentSnap)
	switch {
	case err == nil:
	case errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy):
		c.trustRoot(j, info, err)
		return nil
	default:
		return err
	}
	if base != j.parent {
		j.base = base
	}

	j.signer = c.judgeCommitSignature(j, info)
	j.changes, err = c.repo.Diff(parentSnap.Tree(), newSnap.Tree())
	if err != nil {
		if errors.Is(err, gitstore.ErrBadObject) {
			j.refuse("", RuleObject, "malformed git object: %v", err)
			c.res.Refusals = append(c.res.Refusals, j.out...)
			return nil
		}
		return fmt.Errorf("comparing commit %s with its parent: %w", short(info.Hash), err)
	}
	if err := c.judgeChanges(j); err != nil {
		return err
	}
	sortRefusals(j.out)
	c.res.Refusals = append(c.res.Refusals, j.out...)
	return nil
}

// trustRoot handles a commit whose first parent holds no usable trust
// policy: refused, or accepted as the trust root when bootstrapping.
func (c *checker) trustRoot(j *job, info *gitstore.CommitInfo, why error) {
	what := "has no parent"
	if len(info.Parents) > 0 {
		what = "has a parent with no trust policy"
		if errors.Is(why, policy.ErrBadPolicy) {
			what = fmt.Sprintf("has a parent whose trust policy is invalid (%v)", why)
		}
	}
	if !c.opts.Bootstrap {
		j.refuse("", RuleTrustRoot, "this commit %s, so nothing says who may sign it: unrelated history or a new root cannot enter a guarded signatures repository", what)
		c.res.Refusals = append(c.res.Refusals, j.out...)
		return
	}
	// The trust root must at least end in a valid policy where it has one.
	if _, err := c.states.load(j.newTree); err != nil && !errors.Is(err, policy.ErrNoPolicy) {
		j.refuse(policy.PolicyFile, RulePolicy, "the trust policy this commit establishes is invalid: %v", err)
		c.res.Refusals = append(c.res.Refusals, j.out...)
		return
	}
	c.res.Notes = append(c.res.Notes, fmt.Sprintf("commit %s %s: accepted unjudged as part of the trust root (bootstrap)", short(info.Hash), what))
}

// judgeCommitSignature refuses a commit that is not signed by a current
// maintainer and returns the signer's primary fingerprint ("" if none).
func (c *checker) judgeCommitSignature(j *job, info *gitstore.CommitInfo) string {
	if len(info.Signature) == 0 {
		j.refuse("", RuleCommitSignature, "not signed: every commit must be signed by a current maintainer's key (git commit -S, or tally sign)")
		return ""
	}
	if !strings.HasPrefix(string(info.Signature), "-----BEGIN PGP SIGNATURE-----") {
		j.refuse("", RuleCommitSignature, "the commit signature is not an OpenPGP signature: maintainers sign with their OpenPGP keys")
		return ""
	}
	d, err := verifyDetached(j.parent, info.Payload, info.Signature, j.when)
	if errors.Is(err, errUnknownSigner) {
		j.refuse("", RuleCommitSignature, "signed by key %s, which is not a maintainer key in the trust policy of its parent commit", d.issuer)
		return ""
	}
	if err != nil {
		j.refuse("", RuleCommitSignature, "bad commit signature: %v", err)
		return ""
	}
	if why := c.keyInvalid(j, d.issuer); why != "" {
		j.refuse("", RuleCommitSignature, "signed by %s, but %s", d.primary, why)
		return ""
	}
	return d.primary
}

// keyInvalid says why the key with this fingerprint (primary or subkey) is
// not a current maintainer's valid key for j: it must be valid in the
// parent's trust policy and in the repository's current one, at the change's
// time and, when the check has a clock, now. "" when it is.
func (c *checker) keyInvalid(j *job, fpr string) string {
	type where struct {
		s    *policyState
		what string
	}
	list := []where{{j.parent, "its parent's trust policy"}}
	if j.base != nil {
		list = append(list, where{j.base, "the repository's current trust policy"})
	}
	times := []time.Time{j.when}
	if c.hasNow {
		times = append(times, c.now)
	}
	for _, w := range list {
		for _, t := range times {
			if ok, why := w.s.validAt(fpr, t); !ok {
				return fmt.Sprintf("%s (%s)", why, w.what)
			}
		}
	}
	return ""
}

// verify runs sigstore.Verify on a blob once per keyring.
func (c *checker) verify(t tree, blob plumbing.Hash, keys *sigstore.Keyring) (sigstore.Signature, error, error) {
	k := verifyKey{blob, keys.ID()}
	c.mu.Lock()
	r, ok := c.verified[k]
	c.mu.Unlock()
	if ok {
		return r.sig, r.err, nil
	}
	data, err := t.Blob(blob)
	if err != nil {
		return sigstore.Signature{}, nil, err
	}
	sig, verr := sigstore.Verify(data, keys)
	c.mu.Lock()
	c.verified[k] = verifyResult{sig, verr}
	c.mu.Unlock()
	return sig, verr, nil
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:12]
}
