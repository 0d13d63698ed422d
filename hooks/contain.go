package hooks

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
)

// judgePublishedParent judges merge j against a parent that is already
// published: the merge must keep everything that parent published (see
// judgeKept), whatever its first parent is. Without this, a merge whose
// first parent is an old commit could drop every signature published
// since, and a fast-forward push would judge nothing as changed.
func (c *checker) judgePublishedParent(j *job, ph plumbing.Hash) error {
	snap, err := c.repo.Snapshot(ph)
	if err != nil {
		return err
	}
	pj := &job{ref: j.ref, commit: j.commit, parentCommit: ph, base: j.base, oldTree: snap, newTree: j.newTree,
		tip: j.tip, tipTime: j.tipTime, when: j.when, signer: j.signer,
		against: "compared with its published parent " + short(ph)}
	if pj.parent, err = c.states.load(snap); err != nil {
		if !errors.Is(err, policy.ErrNoPolicy) && !errors.Is(err, policy.ErrBadPolicy) {
			return err
		}
		pj.parent = j.parent // history before the trust root: nothing of a policy to keep
	}
	changes, err := c.repo.Diff(snap.Tree(), j.newSnap.Tree())
	if err != nil {
		return fmt.Errorf("comparing commit %s with its parent %s: %w", short(j.commit), short(ph), err)
	}
	approved, err := c.judgeKept(pj, changes, true)
	if err != nil {
		return err
	}
	j.approved[ph] = approved
	c.flush(pj)
	return nil
}

// judgeContainment checks that newTip contains everything oldTip
// published: the last line of defence whatever the shape of the history in
// between. Paths already refused in a commit of the range are not refused
// again.
func (c *checker) judgeContainment(ref string, oldTip, newTip plumbing.Hash) error {
	oldSnap, err := c.repo.Snapshot(oldTip)
	if err != nil {
		return err
	}
	newSnap, err := c.repo.Snapshot(newTip)
	if err != nil {
		return err
	}
	pst, err := c.states.load(oldSnap)
	if err != nil {
		if errors.Is(err, policy.ErrNoPolicy) || errors.Is(err, policy.ErrBadPolicy) {
			return nil // nothing guarded was published yet
		}
		return err
	}
	info, err := c.repo.ReadCommit(newTip)
	if err != nil {
		return err
	}
	pj := &job{ref: ref, commit: newTip, parentCommit: oldTip, parent: pst, oldTree: oldSnap, newTree: newSnap,
		tip: newSnap, tipTime: info.Committer.When.UTC(), when: info.Committer.When.UTC(),
		against: "the new tip compared with the published " + short(oldTip)}
	changes, err := c.repo.Diff(oldSnap.Tree(), newSnap.Tree())
	if err != nil {
		return fmt.Errorf("comparing %s with %s: %w", short(newTip), short(oldTip), err)
	}
	refused := map[string]bool{}
	for _, r := range c.res.Refusals {
		refused[r.Path] = true
	}
	kept := changes[:0:0]
	for _, ch := range changes {
		if !refused[ch.Path] {
			kept = append(kept, ch)
		}
	}
	policyChanged := false
	for _, ch := range kept {
		if policy.ClassifyPath(pst.policy, ch.Path).Class == policy.ClassPolicy {
			policyChanged = true
		}
	}
	// The trust policy: the published one, or reached from it only through
	// approved changes (judged commit by commit); else the change from the
	// published policy must be approved as a whole.
	judgePolicy := policyChanged && !c.lineage(newTip, oldTip)
	if _, err := c.judgeKept(pj, kept, judgePolicy); err != nil {
		return err
	}
	c.flush(pj)
	return nil
}

// judgeKept refuses the changes j makes to what its old tree published:
// a lookaside file deleted or changed, a build record losing a line, a
// release manifest or approval changed or removed. With withPolicy it also
// judges a change of the trust policy as judgePolicyChange does, and
// reports whether the new policy is the old one or approved.
func (c *checker) judgeKept(j *job, changes []gitstore.DiffEntry, withPolicy bool) (bool, error) {
	var policyPaths []string
	for _, ch := range changes {
		if ch.Action == gitstore.Added {
			continue
		}
		info := policy.ClassifyPath(j.parent.policy, ch.Path)
		switch info.Class {
		case policy.ClassLookaside:
			judgeLookasideChange(j, ch, info)
		case policy.ClassBuildRecord:
			if err := c.judgeRecordKept(j, ch); err != nil {
				return false, err
			}
		case policy.ClassRelease:
			j.refuse(ch.Path, RuleAppendOnly, "%s: release manifests are never changed or removed once published", ch.Action)
		case policy.ClassApproval:
			j.refuse(ch.Path, RuleAppendOnly, "%s: approvals are never changed or removed", ch.Action)
		case policy.ClassPolicy:
			policyPaths = append(policyPaths, ch.Path)
		}
	}
	if len(policyPaths) == 0 || !withPolicy {
		return len(policyPaths) == 0, nil
	}
	return c.judgePolicyChange(j, policyPaths)
}

// judgeRecordKept refuses a build record that lost a line it published.
func (c *checker) judgeRecordKept(j *job, ch gitstore.DiffEntry) error {
	if ch.Action == gitstore.Deleted {
		j.refuse(ch.Path, RuleAppendOnly, "deleted: build records are never removed, they only grow")
		return nil
	}
	old, _, ok, err := readBlobMax(j.oldTree, ch.OldHash, maxBuildRecordSize)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
	}
	if !ok {
		return nil // never accepted in the first place
	}
	data, size, ok, err := readBlobMax(j.newTree, ch.NewHash, maxBuildRecordSize)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ch.Path, err)
	}
	if !ok {
		j.refuse(ch.Path, RuleBuildRecord, "the build record is %d bytes, more than the %d tally reads", size, maxBuildRecordSize)
		return nil
	}
	have := map[string]bool{}
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		have[string(l)] = true
	}
	for _, l := range bytes.SplitAfter(old, []byte("\n")) {
		if len(l) > 0 && !have[string(l)] {
			j.refuse(ch.Path, RuleAppendOnly, "rewritten: a line of the published build record is gone (%q); build records only grow", bytes.TrimSuffix(l, []byte("\n")))
			return nil
		}
	}
	return nil
}

// lineage reports whether the trust policy at commit h is the one at
// origin, or reached from it only through changes judged approved: some
// parent has such a policy and h keeps it, or changes it with approvals
// (judged against the first parent, or against a published parent).
func (c *checker) lineage(h, origin plumbing.Hash) bool {
	if h == origin {
		return true
	}
	j := c.jobs[h]
	if j == nil {
		return false // published but not the origin, or the trust root
	}
	key := [2]plumbing.Hash{h, origin}
	if v, ok := c.ok[key]; ok {
		return v
	}
	c.ok[key] = false // a cycle cannot happen in git; stay safe anyway
	v := false
	for _, ph := range j.info.Parents {
		if !c.lineage(ph, origin) {
			continue
		}
		if j.approved[ph] || c.samePolicy(j.newSnap, ph) {
			v = true
			break
		}
	}
	c.ok[key] = v
	return v
}

// samePolicy reports whether commit ph holds the same trust policy files
// as tree t.
func (c *checker) samePolicy(t tree, ph plumbing.Hash) bool {
	a, err := c.states.load(t)
	if err != nil {
		return false
	}
	snap, err := c.repo.Snapshot(ph)
	if err != nil {
		return false
	}
	return policyIDs(snap, a.policy.Keyring) == a.ids
}
