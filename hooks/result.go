package hooks

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/sigstore"
)

// ErrRefused is wrapped by the error of the hook entry points and of tally
// check when at least one change was refused; the Result lists them.
var ErrRefused = errors.New("refused")

// Rule names the rule a refused change breaks.
type Rule string

// The rules of a guarded signatures repository.
const (
	// RuleAppendOnly: a file that may only be added was deleted, changed,
	// renamed or had its mode changed.
	RuleAppendOnly Rule = "append-only"
	// RuleFileType: a symbolic link, a submodule or an executable file where
	// only regular files belong.
	RuleFileType Rule = "file-type"
	// RuleSignature: an added signature file fails the judgement of
	// sigstore.Judge and JudgeDirectory, or its key is not a current
	// maintainer's valid key.
	RuleSignature Rule = "signature"
	// RuleUnknownPath: a path outside the lookaside tree, the build records,
	// the release manifests, the approvals, the trust policy and the policy's
	// extra_paths.
	RuleUnknownPath Rule = "unknown-path"
	// RuleBuildRecord: a build record that is not the committer's own, not
	// valid, or not only grown.
	RuleBuildRecord Rule = "build-record"
	// RuleRelease: a release manifest added outside a release commit.
	RuleRelease Rule = "release"
	// RulePolicy: a change of the trust policy that is invalid, or that
	// widens trust without approvals from enough current maintainers.
	RulePolicy Rule = "policy"
	// RuleApproval: an approval file that is not a valid approval by a
	// current maintainer.
	RuleApproval Rule = "approval"
	// RuleCommitSignature: a commit that is not signed by a current
	// maintainer's valid key.
	RuleCommitSignature Rule = "commit-signature"
	// RuleHistory: a reference update that rewrites or deletes published
	// history: a non-fast-forward update or deletion of a protected branch,
	// a moved or deleted tag, a reference that is not a branch or tag.
	RuleHistory Rule = "history"
	// RuleObject: a malformed git object, or a reference to something that
	// is not a commit.
	RuleObject Rule = "object"
	// RuleTrustRoot: a commit with no parent holding a trust policy, which
	// cannot be judged (accepted only when bootstrapping).
	RuleTrustRoot Rule = "trust-root"
)

// Refusal is one change that breaks a rule.
type Refusal struct {
	// Ref is the reference being updated ("" when checking a range).
	Ref string `json:"ref,omitempty"`
	// Commit is the commit that makes the change (zero for a reference
	// update and for staged changes).
	Commit plumbing.Hash `json:"commit,omitzero"`
	// Path is the file the change is about ("" for the commit or the
	// reference as a whole).
	Path string `json:"path,omitempty"`
	// Rule is the rule the change breaks.
	Rule Rule `json:"rule"`
	// Kind is the judgement's problem for RuleSignature ("" otherwise).
	Kind sigstore.Kind `json:"kind,omitempty"`
	// Reason says, in lower case, what is wrong and what to do instead.
	Reason string `json:"reason"`
}

// String formats the refusal as a maintainer reads it after
// "tally: refused: ": "<path>: <reason> (commit <id>)",
// "commit <id>: <reason>" or "<ref>: <reason>".
func (r Refusal) String() string {
	commit := ""
	if !r.Commit.IsZero() {
		commit = r.Commit.String()[:12]
	}
	switch {
	case r.Path != "" && commit != "":
		return fmt.Sprintf("%s: %s (commit %s)", r.Path, r.Reason, commit)
	case r.Path != "":
		return fmt.Sprintf("%s: %s", r.Path, r.Reason)
	case commit != "":
		return fmt.Sprintf("commit %s: %s", commit, r.Reason)
	case r.Ref != "":
		return fmt.Sprintf("%s: %s", r.Ref, r.Reason)
	}
	return r.Reason
}

// Result is the outcome of a check.
type Result struct {
	// Commits counts the commits judged.
	Commits int `json:"commits"`
	// Signatures counts the signature files added by those commits, each
	// judged once.
	Signatures int `json:"signatures"`
	// Refusals lists every change that breaks a rule, in the order of the
	// commits (parents first) and of the paths.
	Refusals []Refusal `json:"refusals"`
	// Notes are facts worth knowing that refuse nothing, such as commits
	// accepted as the trust root when bootstrapping.
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether nothing was refused.
func (r *Result) OK() bool { return len(r.Refusals) == 0 }

// Err returns nil when nothing was refused, else an error wrapping
// ErrRefused that counts the refusals.
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d change(s) break the rules of the signatures repository", ErrRefused, len(r.Refusals))
}

func (r *Result) refuse(f Refusal) { r.Refusals = append(r.Refusals, f) }

// sortRefusals orders the refusals of one commit by path.
func sortRefusals(list []Refusal) {
	sort.SliceStable(list, func(i, j int) bool { return list[i].Path < list[j].Path })
}

// shortList joins at most n items, saying how many more there are.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
