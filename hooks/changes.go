package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// addedSig is a signature file a change adds.
type addedSig struct {
	path string
	blob plumbing.Hash
	info policy.PathInfo
}

// judgeChanges judges every path j changes, by the rules of its class.
func (c *checker) judgeChanges(j *job) error {
	p := j.parent.policy
	var (
		added       []addedSig
		policyPaths []string
		approvals   []gitstore.DiffEntry
		releases    []string
		versions    = map[string]bool{}
		others      []string // paths changed outside releases/
	)
	for _, ch := range j.changes {
		info := policy.ClassifyPath(p, ch.Path)
		if info.Class == policy.ClassRelease {
			releases = append(releases, ch.Path)
			versions[info.Release] = true
		} else {
			others = append(others, ch.Path)
		}
		if ch.Action != gitstore.Deleted {
			switch ch.NewMode {
			case filemode.Symlink:
				j.refuse(ch.Path, RuleFileType, "a symbolic link: a signatures repository holds only regular files (a link would let a lookaside reader fetch anything)")
				continue
			case filemode.Submodule:
				j.refuse(ch.Path, RuleFileType, "a submodule: a signatures repository holds only regular files")
				continue
			}
		}
		regular := ch.Action == gitstore.Deleted || ch.NewMode == filemode.Regular
		switch info.Class {
		case policy.ClassPolicy:
			if !regular {
				j.refuse(ch.Path, RuleFileType, "mode %s: the trust policy files are regular files (mode 100644)", modeString(ch.NewMode))
				continue
			}
			policyPaths = append(policyPaths, ch.Path)
		case policy.ClassLookaside:
			if s, ok := judgeLookasideChange(j, ch, info); ok {
				added = append(added, s)
			}
		case policy.ClassBuildRecord:
			if err := judgeBuildRecordChange(j, ch, info); err != nil {
				return err
			}
		case policy.ClassRelease:
			judgeReleaseChange(j, ch, info)
		case policy.ClassApproval:
			approvals = append(approvals, ch)
		case policy.ClassExtra:
			// Listed in extra_paths: any regular or executable file.
		default:
			j.refuse(ch.Path, RuleUnknownPath, "not part of a signatures repository: a commit may change only the lookaside tree (%s/), build records (%s/), release manifests (%s/), approvals (%s/), %s and %s; list other files in extra_paths of %s",
				p.Namespace, policy.BuildsDir, policy.ReleasesDir, policy.ApprovalsDir, policy.PolicyFile, p.Keyring, policy.PolicyFile)
		}
	}
	if len(releases) > 0 && (len(others) > 0 || len(versions) > 1) {
		why := "adds manifests of several releases"
		if len(others) > 0 {
			why = "also changes " + shortList(others, 3)
		}
		for _, r := range releases {
			j.refuse(r, RuleRelease, "release manifests are added only by a release commit, which adds one release's manifests and changes nothing else; this commit %s", why)
		}
	}
	for _, ch := range approvals {
		if err := c.judgeApprovalChange(j, ch); err != nil {
			return err
		}
	}
	if len(policyPaths) > 0 {
		approved, err := c.judgePolicyChange(j, policyPaths)
		if err != nil {
			return err
		}
		if j.approved != nil {
			j.approved[j.parentCommit] = approved
		}
	}
	return c.judgeSignatures(j, added)
}

// modeString writes a git file mode as git does: 100644, 120000.
func modeString(m filemode.FileMode) string { return fmt.Sprintf("%o", uint32(m)) }

// judgeLookasideChange applies the append-only rules to one path of the
// lookaside tree; it returns the file when it is an added signature to judge.
func judgeLookasideChange(j *job, ch gitstore.DiffEntry, info policy.PathInfo) (addedSig, bool) {
	switch ch.Action {
	case gitstore.Deleted:
		j.refuse(ch.Path, RuleAppendOnly, "deleted: signature files are never removed, the lookaside tree only grows (to stop trusting a key, remove it from the trust policy)")
	case gitstore.Modified:
		if ch.OldHash == ch.NewHash {
			j.refuse(ch.Path, RuleAppendOnly, "mode changed from %s to %s: signature files are regular files (mode 100644) and never change", modeString(ch.OldMode), modeString(ch.NewMode))
		} else {
			j.refuse(ch.Path, RuleAppendOnly, "modified: signature files are never rewritten; add a new signature as the next free signature-N")
		}
	case gitstore.Added:
		switch {
		case ch.NewMode != filemode.Regular:
			j.refuse(ch.Path, RuleFileType, "mode %s: signature files are regular files (mode 100644)", modeString(ch.NewMode))
		case info.Problem != "":
			j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: ch.Path, Rule: RuleSignature,
				Kind: sigstore.KindMalformedPath, Reason: string(sigstore.KindMalformedPath) + ": " + info.Problem})
		default:
			return addedSig{path: ch.Path, blob: ch.NewHash, info: info}, true
		}
	}
	return addedSig{}, false
}

// judgeBuildRecordChange lets a maintainer only create or grow their own
// build record, in exactly the form tally writes.
func judgeBuildRecordChange(j *job, ch gitstore.DiffEntry, info policy.PathInfo) error {
	switch {
	case info.Problem != "":
		j.refuse(ch.Path, RuleBuildRecord, "%s", info.Problem)
		return nil
	case ch.Action == gitstore.Deleted:
		j.refuse(ch.Path, RuleAppendOnly, "deleted: build records are never removed, they only grow")
		return nil
	case ch.NewMode != filemode.Regular:
		j.refuse(ch.Path, RuleFileType, "mode %s: build records are regular files (mode 100644)", modeString(ch.NewMode))
		return nil
	case j.signer != "" && info.Fingerprint != j.signer && !mergedFromOtherParent(j, ch):
		j.refuse(ch.Path, RuleBuildRecord, "the build record of %s: a commit signed by %s may change only its signer's own record (%s)",
			info.Fingerprint, j.signer, policy.BuildRecordPath(info.Release, j.signer))
		return nil
	case ch.Action == gitstore.Modified && ch.OldHash == ch.NewHash:
		j.refuse(ch.Path, RuleAppendOnly, "mode changed from %s to %s: build records are regular files (mode 100644)", modeString(ch.OldMode), modeString(ch.NewMode))
		return nil
	}
	data, size, ok, err := readBlobMax(j.newTree, ch.NewHash, maxBuildRecordSize)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
	}
	if !ok {
		j.refuse(ch.Path, RuleBuildRecord, "the build record is %d bytes, more than the %d tally reads", size, maxBuildRecordSize)
		return nil
	}
	rec, err := record.ParseBuildRecord(data)
	if err != nil {
		j.refuse(ch.Path, RuleBuildRecord, "not a valid build record: %v", err)
		return nil
	}
	if !bytes.Equal(rec.Marshal(), data) {
		j.refuse(ch.Path, RuleBuildRecord, "not written the way tally writes build records (tally sign writes them; do not edit them by hand)")
		return nil
	}
	if ch.Action == gitstore.Modified {
		old, _, ok, err := readBlobMax(j.oldTree, ch.OldHash, maxBuildRecordSize)
		if err != nil {
			return fmt.Errorf("reading %s: %w", ch.Path, err)
		}
		if !ok || !bytes.HasPrefix(data, old) {
			j.refuse(ch.Path, RuleAppendOnly, "rewritten: a build record only grows, runs are appended at its end and never changed or removed")
		}
	}
	return nil
}

// mergedFromOtherParent reports whether a merge commit's change to someone
// else's build record only brings in lines that the same record holds in
// another parent of the merge: the record's owner wrote them there, and that
// side of history is judged on its own. (tally merge appends the union of
// both sides; the append-only check still applies to the result.)
func mergedFromOtherParent(j *job, ch gitstore.DiffEntry) bool {
	if len(j.merged) == 0 {
		return false
	}
	data, _, ok, err := readBlobMax(j.newTree, ch.NewHash, maxBuildRecordSize)
	if err != nil || !ok {
		return false
	}
	if ch.Action == gitstore.Modified {
		old, _, ok, err := readBlobMax(j.oldTree, ch.OldHash, maxBuildRecordSize)
		if err != nil || !ok || !bytes.HasPrefix(data, old) {
			return false
		}
		data = data[len(old):]
	}
	lines := map[string]bool{}
	for _, other := range j.merged {
		e, err := other.Stat(ch.Path)
		if err != nil {
			continue
		}
		theirs, _, ok, err := readBlobMax(other, e.Hash, maxBuildRecordSize)
		if err != nil || !ok {
			continue
		}
		for _, l := range bytes.SplitAfter(theirs, []byte("\n")) {
			lines[string(l)] = true
		}
	}
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) > 0 && !lines[string(l)] {
			return false
		}
	}
	return true
}

// judgeReleaseChange lets release manifests only be added.
func judgeReleaseChange(j *job, ch gitstore.DiffEntry, info policy.PathInfo) {
	switch {
	case ch.Action != gitstore.Added:
		j.refuse(ch.Path, RuleAppendOnly, "%s: release manifests are never changed or removed once published", ch.Action)
	case ch.NewMode != filemode.Regular:
		j.refuse(ch.Path, RuleFileType, "mode %s: release manifests are regular files (mode 100644)", modeString(ch.NewMode))
	case info.Problem != "":
		j.refuse(ch.Path, RuleRelease, "%s", info.Problem)
	}
}

// judgeApprovalChange lets approvals only be added: statements named by
// their SHA-256, and signatures of them by current maintainers.
func (c *checker) judgeApprovalChange(j *job, ch gitstore.DiffEntry) error {
	info := policy.ClassifyPath(j.parent.policy, ch.Path)
	switch {
	case ch.Action != gitstore.Added:
		j.refuse(ch.Path, RuleAppendOnly, "%s: approvals are never changed or removed", ch.Action)
		return nil
	case ch.NewMode != filemode.Regular:
		j.refuse(ch.Path, RuleFileType, "mode %s: approvals are regular files (mode 100644)", modeString(ch.NewMode))
		return nil
	case info.Problem != "":
		j.refuse(ch.Path, RuleApproval, "%s", info.Problem)
		return nil
	}
	limit := int64(sigstore.MaxDetachedSize)
	if info.Statement {
		limit = maxStatementSize
	}
	data, size, ok, err := readBlobMax(j.newTree, ch.NewHash, limit)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
	}
	if !ok {
		j.refuse(ch.Path, RuleApproval, "%d bytes, more than the %d an approval file may have", size, limit)
		return nil
	}
	if info.Statement {
		if got := sha256Hex(data); got != "sha256:"+info.ApprovalID {
			j.refuse(ch.Path, RuleApproval, "the statement's SHA-256 is %s, not the id its directory names", strings.TrimPrefix(got, "sha256:"))
			return nil
		}
		if _, err := ParseStatement(data); err != nil {
			j.refuse(ch.Path, RuleApproval, "not an approval statement: %v", err)
		}
		return nil
	}
	stPath := statementPath(info.ApprovalID)
	se, err := j.newTree.Stat(stPath)
	if errors.Is(err, fs.ErrNotExist) {
		j.refuse(ch.Path, RuleApproval, "there is no %s for it to approve: add the statement with the approval (tally approve does)", stPath)
		return nil
	}
	if err != nil {
		j.refuse(ch.Path, RuleApproval, "reading %s: %v", stPath, err)
		return nil
	}
	st, _, ok, err := readBlobMax(j.newTree, se.Hash, maxStatementSize)
	if err != nil || !ok || sha256Hex(st) != "sha256:"+info.ApprovalID {
		return nil // the statement itself is refused
	}
	d, err := sigstore.VerifyDetached(j.parent.entities, st, data, j.when)
	switch {
	case errors.Is(err, sigstore.ErrUnknownSigner):
		j.refuse(ch.Path, RuleApproval, "signed by key %s, which is not a current maintainer's key: only maintainers approve changes of the trust policy", d.Issuer)
	case err != nil:
		j.refuse(ch.Path, RuleApproval, "bad approval signature: %v", err)
	case d.Primary != info.Fingerprint:
		j.refuse(ch.Path, RuleApproval, "signed by %s, not by the %s its file name says", d.Primary, info.Fingerprint)
	default:
		if why := c.keyInvalid(j, d.Issuer, d.At); why != "" {
			j.refuse(ch.Path, RuleApproval, "signed by %s, but %s", d.Primary, why)
		}
	}
	return nil
}

// judgePolicyChange checks a change of tally.toml or the keyring: the new
// policy must be valid, new keys usable by stock clients, and a change that
// widens trust or edits a key beyond what its holder adds needs approvals
// from as many current maintainers as the threshold, by statements bound to
// this transition (see Statement). It reports whether the change is
// accepted.
func (c *checker) judgePolicyChange(j *job, paths []string) (bool, error) {
	sort.Strings(paths)
	at := paths[0]
	next, err := c.states.load(j.newTree)
	if err != nil {
		if errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy) {
			j.refuse(at, RulePolicy, "the new trust policy is invalid: %v", err)
			return false, nil
		}
		return false, err
	}
	st, need := changeStatement(j.parent, next, j.parentCommit)
	accepted := true
	for _, k := range next.keys.Keys() {
		if _, ok := j.parent.keys.Key(k.Fingerprint); ok {
			continue
		}
		e, _ := next.keys.Entity(k.Fingerprint)
		for _, issue := range sigstore.CheckKey(e, j.when) {
			if issue.Refuse {
				j.refuse(at, RulePolicy, "adds %v", issue)
				accepted = false
			}
		}
	}
	if len(need) == 0 {
		return accepted, nil
	}
	threshold := j.parent.policy.Threshold
	if j.base != nil {
		threshold = max(threshold, j.base.policy.Threshold)
	}
	approvers, legacy, err := c.approvers(j, j.parent, next)
	if err != nil {
		return false, err
	}
	if len(approvers) >= threshold {
		what := "approved"
		if legacy {
			what = "approved (counting version 1 statements, which only an audit without a clock counts: they could be replayed)"
		}
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("commit %s changes the trust policy (%s), %s by %s",
			short(j.commit), shortList(need, 3), what, strings.Join(approvers, ", ")))
		return accepted, nil
	}
	have := "none"
	if len(approvers) > 0 {
		have = fmt.Sprintf("%d (%s)", len(approvers), strings.Join(approvers, ", "))
	}
	j.refuse(at, RulePolicy, "this change %s, which needs approvals by %d current maintainer(s); it has %s: each maintainer records theirs with tally approve (in %s); approvals are used once, for the change from the policy of one commit",
		shortList(need, 3), threshold, have, path.Dir(approvalPath(st.ID(), "x")))
	return false, nil
}

// approvers returns the current maintainers (primary fingerprints, sorted)
// whose valid approvals of the change from one policy to the other, on top
// of j.parentCommit, are in j's new tree or its tip: signatures of a
// version 2 statement of exactly this change whose base commit is
// j.parentCommit, or an ancestor of it with the from policy in every commit
// since (Statement). Version 1 statements count only when the check has no
// clock (an audit of old history); legacy reports that one did.
func (c *checker) approvers(j *job, from, to *policyState) (out []string, legacy bool, err error) {
	type source struct {
		t       tree
		claimed time.Time
	}
	sources := []source{{j.newTree, j.when}}
	if j.tip != nil {
		claimed := j.tipTime
		if claimed.Before(j.when) {
			claimed = j.when
		}
		sources = append(sources, source{j.tip, claimed})
	}
	fromDigest, toDigest := from.digest(), to.digest()
	for _, src := range sources {
		dirs, err := src.t.List(policy.ApprovalsDir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading %s: %w", policy.ApprovalsDir, err)
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			dir := policy.ApprovalsDir + "/" + d.Name
			se, err := src.t.Stat(dir + "/" + policy.StatementFile)
			if err != nil {
				continue
			}
			data, _, ok, err := readBlobMax(src.t, se.Hash, maxStatementSize)
			if err != nil || !ok {
				continue
			}
			st, err := ParseStatement(data)
			if err != nil || st.From != fromDigest || st.To != toDigest {
				continue
			}
			switch st.Version {
			case 2:
				want, _ := changeStatement(from, to, plumbing.NewHash(st.Base))
				if !bytes.Equal(want.Marshal(), data) {
					continue
				}
				valid, err := c.baseValid(plumbing.NewHash(st.Base), j.parentCommit, from)
				if err != nil {
					return nil, false, err
				}
				if !valid {
					continue
				}
			case 1:
				want, _ := changeStatement(from, to, plumbing.ZeroHash)
				want.Version = 1
				if c.hasNow || !bytes.Equal(want.Marshal(), data) {
					continue
				}
			}
			entries, err := src.t.List(dir)
			if err != nil {
				return nil, false, fmt.Errorf("reading %s: %w", dir, err)
			}
			for _, e := range entries {
				fpr, ok := strings.CutSuffix(e.Name, ".asc")
				if !ok || e.Mode != filemode.Regular || slices.Contains(out, fpr) {
					continue
				}
				sig, _, ok, err := readBlobMax(src.t, e.Hash, sigstore.MaxDetachedSize)
				if err != nil {
					return nil, false, fmt.Errorf("reading %s/%s: %w", dir, e.Name, err)
				}
				if !ok {
					continue
				}
				v, err := sigstore.VerifyDetached(from.entities, data, sig, src.claimed)
				if err != nil || v.Primary != fpr || c.keyInvalid(j, v.Issuer, v.At) != "" {
					continue
				}
				out = append(out, fpr)
				legacy = legacy || st.Version == 1
			}
		}
	}
	sort.Strings(out)
	return out, legacy, nil
}

// baseValid reports whether a statement based on commit base may approve a
// change made on top of commit at, whose policy is from: base is at, or an
// ancestor of it, and base and every commit since hold from's policy
// files, so the statement's change has not happened in between.
func (c *checker) baseValid(base, at plumbing.Hash, from *policyState) (bool, error) {
	if base.IsZero() || at.IsZero() {
		return false, nil
	}
	key := [2]plumbing.Hash{base, at}
	c.mu.Lock()
	v, ok := c.bases[key]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := c.policyStable(base, at, from)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.bases[key] = v
	c.mu.Unlock()
	return v, nil
}

func (c *checker) policyStable(base, at plumbing.Hash, from *policyState) (bool, error) {
	if _, err := c.repo.ReadCommit(base); err != nil {
		return false, nil // not a commit of this repository
	}
	if base != at {
		ok, err := c.repo.IsAncestor(base, at)
		if err != nil || !ok {
			return false, err
		}
	}
	commits, err := c.repo.CommitsBetween(base, at)
	if err != nil {
		return false, err
	}
	hashes := []plumbing.Hash{base}
	for _, ci := range commits {
		hashes = append(hashes, ci.Hash)
	}
	for _, h := range hashes {
		snap, err := c.repo.Snapshot(h)
		if err != nil {
			return false, err
		}
		if policyIDs(snap, from.policy.Keyring) != from.ids {
			return false, nil
		}
	}
	return true, nil
}

// judgeSignatures gives every added signature file the one judgement
// (sigstore.JudgeFiles over its whole directory as the commit leaves it,
// with the parent's keyring, the file entering at the commit's time and
// judged again now when the checker has a clock), and checks that the
// repository's current trust policy accepts its key too.
func (c *checker) judgeSignatures(j *job, added []addedSig) error {
	c.res.Signatures += len(added)
	if len(added) == 0 {
		return nil
	}
	keys := j.parent.keys
	type item struct {
		path string
		loc  sigstore.Location
		name string
		blob plumbing.Hash
		mode filemode.FileMode
		new  bool
	}
	isNew := make(map[string]bool, len(added))
	var dirs []string
	for _, a := range added {
		isNew[a.path] = true
		if d := a.info.Location.Dir(); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	// Every file of each touched directory: the new ones and their siblings.
	var items []item
	byDir := map[string][]int{}
	for _, dir := range dirs {
		entries, err := j.newTree.List(dir)
		if err != nil {
			return fmt.Errorf("listing %s: %w", dir, err)
		}
		for _, e := range entries {
			p := dir + "/" + e.Name
			info := policy.ClassifyPath(j.parent.policy, p)
			if info.Class != policy.ClassLookaside || info.Problem != "" {
				continue // refused above when added; old junk is not this change's
			}
			byDir[dir] = append(byDir[dir], len(items))
			items = append(items, item{path: p, loc: info.Location, name: info.Name, blob: e.Hash, mode: e.Mode, new: isNew[p]})
		}
	}
	// Verify in parallel; siblings verified before come from the cache.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
		files    = make([]sigstore.File, len(items))
	)
	// The file enters the history at the commit's time, and with a clock
	// (a hook, tally check) it must still count now.
	times := sigstore.Times{Entered: j.when, Now: j.when}
	if c.hasNow {
		times.Now, times.KeyNow = c.now, true
	}
	for w := 0; w < c.opts.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := &items[i]
				f := &files[i]
				f.Location, f.Repository, f.Times = it.loc, j.parent.policy.Repository(it.name), times
				if it.mode != filemode.Regular {
					f.Malformed = fmt.Sprintf("not a regular file (mode %s)", modeString(it.mode))
					continue
				}
				sig, verr, err := c.verify(j.newTree, it.blob, keys)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("reading %s: %w", it.path, err)
					}
					mu.Unlock()
					continue
				}
				f.Signature, f.VerifyErr = sig, verr
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// The one judgement (sigstore.JudgeFiles), directory by directory.
	for _, dir := range dirs {
		idx := byDir[dir]
		in := make([]sigstore.File, len(idx))
		for k, i := range idx {
			in[k] = files[i]
		}
		judged := sigstore.JudgeFiles(in, keys)
		for k, i := range idx {
			it := items[i]
			if !it.new {
				continue
			}
			v := judged[k]
			if v.Problem != "" {
				j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: it.path, Rule: RuleSignature,
					Kind: v.Problem, Reason: string(v.Problem) + ": " + v.Message})
				continue
			}
			// The repository's current trust policy, when it is another one
			// than the parent's, must accept the key as well.
			if why := c.keyInvalid(j, v.Signature.Issuer); why != "" {
				j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: it.path, Rule: RuleSignature,
					Kind: sigstore.KindKeyNotValid, Reason: fmt.Sprintf("%s: signed by %s, but %s", sigstore.KindKeyNotValid, v.Signature.Signer, why)})
			}
		}
	}
	return nil
}
