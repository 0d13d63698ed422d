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
	// nil judges keys only at each commit's time (auditing old history),
	// and then also counts approvals in the version 1 statement format,
	// which newer checks never count (they could be replayed).
	Now func() time.Time
	// Bootstrap accepts, unjudged, the commits whose first parent holds no
	// trust policy: the history up to the commit that creates tally.toml,
	// pushed into an empty repository. Otherwise such a commit is refused.
	Bootstrap bool
	// Parallel is how many signatures are verified at once; GOMAXPROCS
	// when 0. Memory does not grow with it: the signature files held in
	// memory at once are bounded by MemoryBudget.
	Parallel int
}

// MemoryBudget bounds the bytes of signature files a check holds in memory
// at once, whatever Options.Parallel is. Each file is at most
// sigstore.MaxSignatureSize, its size read from its git object header
// before it is inflated.
const MemoryBudget = 16 << 20

// maxBuildRecordSize bounds a build record the guard reads: a record lists
// what one maintainer built for one release, a few hundred bytes an image.
const maxBuildRecordSize = 16 << 20

// checker judges commits for one check; it caches trust policies and
// signature verifications across the commits it judges.
type checker struct {
	repo   *gitstore.Repo
	opts   Options
	now    time.Time
	hasNow bool
	states states
	res    *Result
	mem    *budget

	mu       sync.Mutex
	verified map[verifyKey]verifyResult
	bases    map[[2]plumbing.Hash]bool // statement base validity, by base and from commit
	jobs     map[plumbing.Hash]*job    // judged commits of this check
	ok       map[[2]plumbing.Hash]bool // policy lineage, by commit and origin
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
	c := &checker{repo: repo, opts: opts, res: &Result{Refusals: []Refusal{}}, verified: map[verifyKey]verifyResult{},
		bases: map[[2]plumbing.Hash]bool{}, jobs: map[plumbing.Hash]*job{}, ok: map[[2]plumbing.Hash]bool{}, mem: newBudget(MemoryBudget)}
	if opts.Now != nil {
		c.now, c.hasNow = opts.Now().UTC(), true
	}
	if c.opts.Parallel <= 0 {
		c.opts.Parallel = runtime.GOMAXPROCS(0)
	}
	return c
}

// pending is a commit to judge and what it is judged against.
type pending struct {
	info *gitstore.CommitInfo
	ref  string
	tip  *gitstore.Snapshot // the pushed tip: also searched for approvals
	base *policyState       // the repository's current trust policy
	// published reports whether a commit is reachable from the old tip of
	// the reference being updated: a merge must keep what those parents hold.
	published func(plumbing.Hash) (bool, error)
}

// Check judges every commit reachable from newTip but not from oldTip
// (oldTip zero: all of newTip's history), each against the trust policy of
// its first parent and of oldTip (the repository's current maintainers),
// and refuses the range when oldTip is not an ancestor of newTip: that
// update would rewrite published history. It first checks every commit's
// signature and judges no content when one fails. A merge is judged against
// its first parent and, for what must not be lost, against every other
// parent that is published (reachable from oldTip). Finally newTip must
// contain everything oldTip published: every lookaside file byte for byte,
// every build-record line, every release manifest and approval, and
// oldTip's trust policy or an approved successor of it. Approvals of a
// policy change may be in the changing commit's tree or in newTip's. The
// error is for failures to read the repository; refusals are in the Result.
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
	contained := true
	if !oldTip.IsZero() {
		ok, err := repo.IsAncestor(oldTip, newCommit)
		if err != nil {
			return nil, fmt.Errorf("checking %s..%s: %w", short(oldTip), short(newCommit), err)
		}
		if !ok {
			contained = false
			c.res.refuse(Refusal{Path: short(oldTip) + ".." + short(newCommit), Rule: RuleHistory,
				Reason: "non-fast-forward: the new tip does not contain the old one, so this update would rewrite published history (force-push); merge instead (tally merge, or git merge), and for a pull request check from the merge base"})
		}
	}
	commits, err := repo.CommitsBetween(oldTip, newCommit)
	if err != nil {
		return nil, fmt.Errorf("listing the commits of %s..%s: %w", short(oldTip), short(newCommit), err)
	}
	isNew := make(map[plumbing.Hash]bool, len(commits))
	for _, info := range commits {
		isNew[info.Hash] = true
	}
	base, err := c.baseAt(oldTip)
	if err != nil {
		return nil, err
	}
	tip, err := repo.Snapshot(newCommit)
	if err != nil {
		return nil, err
	}
	list := make([]*pending, len(commits))
	for i, info := range commits {
		list[i] = &pending{info: info, tip: tip, base: base, published: func(h plumbing.Hash) (bool, error) { return !oldTip.IsZero() && !isNew[h], nil }}
	}
	judged, err := c.judgeAll(list)
	if err != nil || !judged || !contained || oldTip.IsZero() {
		return c.res, err
	}
	if err := c.judgeContainment("", oldTip, newCommit); err != nil {
		return nil, err
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
	_, err = c.judgeAll([]*pending{{info: info, tip: tip, published: func(plumbing.Hash) (bool, error) { return false, nil }}})
	if err != nil {
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

// job is one change to judge: a commit against its first parent (or a
// published parent), or the staged index against HEAD.
type job struct {
	ref          string
	commit       plumbing.Hash // zero for the index
	parentCommit plumbing.Hash // the commit whose tree is oldTree
	parent       *policyState  // the trust policy before the change
	base         *policyState  // the repository's current trust policy; nil: parent
	oldTree      tree
	newTree      tree
	merged       []tree // the other parents of a merge commit, whose changes it brings in
	tip          tree   // also searched for approvals; nil: newTree only
	tipTime      time.Time
	changes      []gitstore.DiffEntry
	signer       string // the commit signer's primary fingerprint; "" when unknown
	when         time.Time
	out          []Refusal
	// against names the published parent a merge is compared with ("" for
	// the first parent): refusals say so.
	against string

	info      *gitstore.CommitInfo
	published func(plumbing.Hash) (bool, error)
	newSnap   *gitstore.Snapshot
	approved  map[plumbing.Hash]bool // parents the commit's trust policy is an approved successor of
}

func (j *job) refuse(path string, rule Rule, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if j.against != "" {
		reason = j.against + ": " + reason
	}
	j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: path, Rule: rule, Reason: reason})
}

// flush moves j's refusals to the result.
func (c *checker) flush(j *job) {
	sortRefusals(j.out)
	c.res.Refusals = append(c.res.Refusals, j.out...)
	j.out = nil
}

// judgeAll judges commits, parents before children, in two passes: first
// what is cheap (every commit's signature and trust root), then, only when
// nothing was refused so far, their content. An unsigned or foreign push
// costs no more than reading its commits. It reports whether the content
// was judged.
func (c *checker) judgeAll(list []*pending) (bool, error) {
	jobs := make([]*job, 0, len(list))
	for _, p := range list {
		c.res.Commits++
		j, err := c.prepare(p)
		if err != nil {
			return false, err
		}
		if j == nil {
			continue // the trust root
		}
		j.signer = c.judgeCommitSignature(j, p.info)
		c.flush(j)
		jobs = append(jobs, j)
	}
	if !c.res.OK() {
		c.res.Notes = append(c.res.Notes, "the content of the commits was not judged: they are refused for their commit signatures or reference updates first, which cost nothing to check")
		return false, nil
	}
	for _, j := range jobs {
		if err := c.judgeContent(j); err != nil {
			return false, err
		}
	}
	return true, nil
}

// prepare loads what judging a commit needs; nil when the commit is the
// trust root (accepted or refused here).
func (c *checker) prepare(p *pending) (*job, error) {
	info := p.info
	j := &job{ref: p.ref, commit: info.Hash, tip: p.tip, when: info.Committer.When.UTC(), info: info, published: p.published}
	if p.tip != nil {
		if ti, err := c.repo.ReadCommit(p.tip.Commit()); err == nil {
			j.tipTime = ti.Committer.When.UTC()
		}
	}
	// A commit is judged no earlier than its parents: a backdated commit
	// cannot claim a time before a key expired or was revoked.
	for _, ph := range info.Parents {
		pi, err := c.repo.ReadCommit(ph)
		if err != nil {
			return nil, fmt.Errorf("reading parent %s of %s: %w", short(ph), short(info.Hash), err)
		}
		if t := pi.Committer.When.UTC(); t.After(j.when) {
			j.when = t
		}
	}
	if len(info.Parents) > 0 {
		j.parentCommit = info.Parents[0]
	}
	parentSnap, err := c.repo.Snapshot(j.parentCommit)
	if err != nil {
		return nil, err
	}
	newSnap, err := c.repo.Snapshot(info.Hash)
	if err != nil {
		return nil, err
	}
	j.oldTree, j.newTree, j.newSnap = parentSnap, newSnap, newSnap
	for _, ph := range info.Parents[min(1, len(info.Parents)):] {
		snap, err := c.repo.Snapshot(ph)
		if err != nil {
			return nil, err
		}
		j.merged = append(j.merged, snap)
	}
	j.parent, err = c.states.load(parentSnap)
	switch {
	case err == nil:
	case errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy):
		c.trustRoot(j, info, err)
		return nil, nil
	default:
		return nil, err
	}
	if p.base != j.parent {
		j.base = p.base
	}
	c.jobs[info.Hash] = j
	return j, nil
}

// judgeContent judges every path a commit changes relative to its first
// parent, then a merge against each published parent.
func (c *checker) judgeContent(j *job) error {
	var err error
	j.changes, err = c.repo.Diff(j.oldTree.(*gitstore.Snapshot).Tree(), j.newSnap.Tree())
	if err != nil {
		if errors.Is(err, gitstore.ErrBadObject) {
			j.refuse("", RuleObject, "malformed git object: %v", err)
			c.flush(j)
			return nil
		}
		return fmt.Errorf("comparing commit %s with its parent: %w", short(j.commit), err)
	}
	j.approved = map[plumbing.Hash]bool{}
	if err := c.judgeChanges(j); err != nil {
		return err
	}
	c.flush(j)
	for _, ph := range j.info.Parents[min(1, len(j.info.Parents)):] {
		published, err := j.published(ph)
		if err != nil {
			return err
		}
		if !published {
			continue // judged on its own; what it adds may be renumbered
		}
		if err := c.judgePublishedParent(j, ph); err != nil {
			return err
		}
	}
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
		c.flush(j)
		return
	}
	// The trust root must at least end in a valid policy where it has one.
	if _, err := c.states.load(j.newTree); err != nil && !errors.Is(err, policy.ErrNoPolicy) {
		j.refuse(policy.PolicyFile, RulePolicy, "the trust policy this commit establishes is invalid: %v", err)
		c.flush(j)
		return
	}
	c.res.Notes = append(c.res.Notes, fmt.Sprintf("commit %s %s: accepted unjudged as part of the trust root (bootstrap)", short(info.Hash), what))
}

// judgeCommitSignature refuses a commit that is not signed by a current
// maintainer and returns the signer's primary fingerprint ("" if none). The
// signature may have been made up to sigstore.MaxClockSkew after the
// committer time; the commit is then judged at the later time.
func (c *checker) judgeCommitSignature(j *job, info *gitstore.CommitInfo) string {
	if len(info.Signature) == 0 {
		j.refuse("", RuleCommitSignature, "not signed: every commit must be signed by a current maintainer's key (git commit -S, or tally sign)")
		return ""
	}
	if !strings.HasPrefix(string(info.Signature), "-----BEGIN PGP SIGNATURE-----") {
		j.refuse("", RuleCommitSignature, "the commit signature is not an OpenPGP signature: maintainers sign with their OpenPGP keys")
		return ""
	}
	d, err := sigstore.VerifyDetached(j.parent.entities, info.Payload, info.Signature, j.when)
	if errors.Is(err, sigstore.ErrUnknownSigner) {
		j.refuse("", RuleCommitSignature, "signed by key %s, which is not a maintainer key in the trust policy of its parent commit", d.Issuer)
		return ""
	}
	if err != nil {
		j.refuse("", RuleCommitSignature, "bad commit signature: %v", err)
		return ""
	}
	j.when = d.At
	if why := c.keyInvalid(j, d.Issuer); why != "" {
		j.refuse("", RuleCommitSignature, "signed by %s, but %s", d.Primary, why)
		return ""
	}
	return d.Primary
}

// keyInvalid says why the key with this fingerprint (primary or subkey) is
// not a current maintainer's valid key for j: it must be valid in the
// parent's trust policy and in the repository's current one, at the change's
// time, at the other times given and, when the check has a clock, now. ""
// when it is.
func (c *checker) keyInvalid(j *job, fpr string, at ...time.Time) string {
	type where struct {
		s    *policyState
		what string
	}
	list := []where{{j.parent, "its parent's trust policy"}}
	if j.base != nil {
		list = append(list, where{j.base, "the repository's current trust policy"})
	}
	times := append([]time.Time{j.when}, at...)
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

// verify runs sigstore.Verify on a blob once per keyring. The blob's size
// is read first: one larger than sigstore.MaxSignatureSize is judged
// without being read, and the bytes held at once stay within MemoryBudget.
func (c *checker) verify(t tree, blob plumbing.Hash, keys *sigstore.Keyring) (sigstore.Signature, error, error) {
	k := verifyKey{blob, keys.ID()}
	c.mu.Lock()
	r, ok := c.verified[k]
	c.mu.Unlock()
	if ok {
		return r.sig, r.err, nil
	}
	size, err := t.BlobSize(blob)
	if err != nil {
		return sigstore.Signature{}, nil, err
	}
	var (
		sig  sigstore.Signature
		verr error
	)
	if size > sigstore.MaxSignatureSize {
		verr = &sigstore.Problem{Kind: sigstore.KindGarbage,
			Message: fmt.Sprintf("the signature file is %d bytes, more than the %d clients read", size, sigstore.MaxSignatureSize)}
	} else {
		cost := 3*size + 64<<10 // the inflated object, the caller's copy, and what verifying it allocates
		c.mem.acquire(cost)
		data, err := t.Blob(blob)
		if err != nil {
			c.mem.release(cost)
			return sigstore.Signature{}, nil, err
		}
		sig, verr = sigstore.Verify(data, keys)
		c.mem.release(cost)
	}
	c.mu.Lock()
	c.verified[k] = verifyResult{sig, verr}
	c.mu.Unlock()
	return sig, verr, nil
}

// budget is a counting semaphore of bytes.
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int64
	max  int64
}

func newBudget(n int64) *budget {
	b := &budget{free: n, max: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) {
	n = min(n, b.max)
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	n = min(n, b.max)
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func short(h plumbing.Hash) string {
	if h.IsZero() {
		return "(none)"
	}
	return h.String()[:12]
}
