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
		if err := c.judgePolicyChange(j, policyPaths); err != nil {
			return err
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
	data, err := j.newTree.Blob(ch.NewHash)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
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
		old, err := j.oldTree.Blob(ch.OldHash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", ch.Path, err)
		}
		if !bytes.HasPrefix(data, old) {
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
	data, err := j.newTree.Blob(ch.NewHash)
	if err != nil {
		return false
	}
	if ch.Action == gitstore.Modified {
		old, err := j.oldTree.Blob(ch.OldHash)
		if err != nil || !bytes.HasPrefix(data, old) {
			return false
		}
		data = data[len(old):]
	}
	lines := map[string]bool{}
	for _, other := range j.merged {
		theirs, err := other.ReadFile(ch.Path)
		if err != nil {
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
	data, err := j.newTree.Blob(ch.NewHash)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
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
	st, err := j.newTree.ReadFile(stPath)
	if errors.Is(err, fs.ErrNotExist) {
		j.refuse(ch.Path, RuleApproval, "there is no %s for it to approve: add the statement with the approval (tally approve does)", stPath)
		return nil
	}
	if err != nil {
		j.refuse(ch.Path, RuleApproval, "reading %s: %v", stPath, err)
		return nil
	}
	if sha256Hex(st) != "sha256:"+info.ApprovalID {
		return nil // the statement itself is refused
	}
	d, err := verifyDetached(j.parent, st, data, j.when)
	switch {
	case errors.Is(err, errUnknownSigner):
		j.refuse(ch.Path, RuleApproval, "signed by key %s, which is not a current maintainer's key: only maintainers approve changes of the trust policy", d.issuer)
	case err != nil:
		j.refuse(ch.Path, RuleApproval, "bad approval signature: %v", err)
	case d.primary != info.Fingerprint:
		j.refuse(ch.Path, RuleApproval, "signed by %s, not by the %s its file name says", d.primary, info.Fingerprint)
	default:
		if why := c.keyInvalid(j, d.issuer); why != "" {
			j.refuse(ch.Path, RuleApproval, "signed by %s, but %s", d.primary, why)
		}
	}
	return nil
}

// judgePolicyChange checks a change of tally.toml or the keyring: the new
// policy must be valid, new keys usable by stock clients, and a change that
// widens trust needs approvals from as many current maintainers as the
// threshold.
func (c *checker) judgePolicyChange(j *job, paths []string) error {
	sort.Strings(paths)
	at := paths[0]
	next, err := c.states.load(j.newTree)
	if err != nil {
		if errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy) {
			j.refuse(at, RulePolicy, "the new trust policy is invalid: %v", err)
			return nil
		}
		return err
	}
	st, need := changeStatement(j.parent, next)
	for _, k := range next.keys.Keys() {
		if _, ok := j.parent.keys.Key(k.Fingerprint); ok {
			continue
		}
		e, _ := next.keys.Entity(k.Fingerprint)
		for _, issue := range sigstore.CheckKey(e, j.when) {
			if issue.Refuse {
				j.refuse(at, RulePolicy, "adds %v", issue)
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	threshold := j.parent.policy.Threshold
	if j.base != nil {
		threshold = max(threshold, j.base.policy.Threshold)
	}
	approvers, err := c.approvers(j, st)
	if err != nil {
		return err
	}
	if len(approvers) >= threshold {
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("commit %s changes the trust policy (%s), approved by %s",
			short(j.commit), shortList(need, 3), strings.Join(approvers, ", ")))
		return nil
	}
	have := "none"
	if len(approvers) > 0 {
		have = fmt.Sprintf("%d (%s)", len(approvers), strings.Join(approvers, ", "))
	}
	j.refuse(at, RulePolicy, "this change %s, which needs approvals by %d current maintainer(s); it has %s: each maintainer records theirs with tally approve (in %s)",
		shortList(need, 3), threshold, have, path.Dir(approvalPath(st.ID(), "x")))
	return nil
}

// approvers returns the current maintainers (primary fingerprints, sorted)
// whose valid approvals of st are in j's new tree or its tip.
func (c *checker) approvers(j *job, st Statement) ([]string, error) {
	id, data := st.ID(), st.Marshal()
	dir := policy.ApprovalsDir + "/" + id
	var out []string
	for _, t := range []tree{j.newTree, j.tip} {
		if t == nil {
			continue
		}
		entries, err := t.List(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, e := range entries {
			fpr, ok := strings.CutSuffix(e.Name, ".asc")
			if !ok || e.Mode != filemode.Regular || slices.Contains(out, fpr) {
				continue
			}
			sig, err := t.Blob(e.Hash)
			if err != nil {
				return nil, fmt.Errorf("reading %s/%s: %w", dir, e.Name, err)
			}
			d, err := verifyDetached(j.parent, data, sig, j.when)
			if err != nil || d.primary != fpr || c.keyInvalid(j, d.issuer) != "" {
				continue
			}
			out = append(out, fpr)
		}
	}
	sort.Strings(out)
	return out, nil
}

// judgeSignatures gives every added signature file the one judgement
// (sigstore.JudgeVerified, then JudgeDirectory over its whole directory as
// the commit leaves it) with the parent's keyring, and checks that its key is
// a current maintainer's valid key.
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
		v    sigstore.Verdict
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
	)
	for w := 0; w < c.opts.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := &items[i]
				if it.mode != filemode.Regular {
					it.v = sigstore.Verdict{Location: it.loc, Problem: sigstore.KindMalformedPath,
						Severity: sigstore.KindMalformedPath.Severity(), Message: fmt.Sprintf("not a regular file (mode %s)", modeString(it.mode))}
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
				it.v = sigstore.JudgeVerified(it.loc, j.parent.policy.Repository(it.name), sig, verr)
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
	for _, dir := range dirs {
		idx := byDir[dir]
		verdicts := make([]sigstore.Verdict, len(idx))
		for k, i := range idx {
			verdicts[k] = items[i].v
		}
		judged := sigstore.JudgeDirectory(verdicts)
		byNumber := make(map[int]sigstore.Verdict, len(judged))
		for _, v := range judged {
			byNumber[v.Location.Number] = v
		}
		for _, i := range idx {
			it := items[i]
			if !it.new {
				continue
			}
			v := byNumber[it.loc.Number]
			if v.Problem != "" {
				j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: it.path, Rule: RuleSignature,
					Kind: v.Problem, Reason: string(v.Problem) + ": " + v.Message})
				continue
			}
			if why := c.keyInvalid(j, v.Signature.Issuer); why != "" {
				j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: it.path, Rule: RuleSignature,
					Reason: fmt.Sprintf("signed by %s, but %s", v.Signature.Signer, why)})
				continue
			}
			if exp := v.Signature.Expires; !exp.IsZero() && (!j.when.Before(exp) || c.hasNow && !c.now.Before(exp)) {
				j.out = append(j.out, Refusal{Ref: j.ref, Commit: j.commit, Path: it.path, Rule: RuleSignature,
					Reason: fmt.Sprintf("the signature expired on %s: clients reject it, so it can never count", exp.UTC().Format(time.RFC3339))})
			}
		}
	}
	return nil
}
