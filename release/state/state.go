package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// Errors of Check: each names one attack it stops.
var (
	// ErrRewritten: the commit last verified is no longer in the history
	// (a rewritten history drops a revocation or a maintainer's removal;
	// an older bundle or mirror serves a history from before it).
	ErrRewritten = errors.New("the history was rewritten or rolled back")
	// ErrPolicyRolledBack: the trust policy is one the recorded policy
	// superseded (an old keyring or threshold brought back).
	ErrPolicyRolledBack = errors.New("the trust policy was rolled back")
	// ErrFrozen: no commit signed by a trusted key is newer than the
	// maximum age (a repository or mirror frozen at an old state).
	ErrFrozen = errors.New("the repository is frozen")
	// ErrOtherRepository: the state file records another repository.
	ErrOtherRepository = errors.New("the state file is for another repository")
	// ErrBadState: the state file does not parse.
	ErrBadState = errors.New("invalid state file")
)

// formatVersion is the format version of a state file.
const formatVersion = 1

// Limits of a state file: far above what a real one holds.
const (
	maxStateSize = 4 << 20
	maxPrevious  = 10000
)

// State is what a consumer recorded about the repository it last verified.
type State struct {
	Version int `json:"tally_state"`
	// Root is the first commit of the branch's first-parent history: which
	// repository this is.
	Root      string `json:"root"`
	Namespace string `json:"namespace"`
	// Commit is the branch tip last verified, CommitTime its committer time.
	Commit     string    `json:"commit"`
	CommitTime time.Time `json:"commit_time"`
	// Policy is the trust policy at Commit.
	Policy Policy `json:"policy"`
	// Superseded are the ids of the trust policies Policy and its
	// predecessors replaced, sorted: a policy never comes back.
	Superseded []string `json:"superseded_policies"`
	// VerifiedAt is when the verification passed.
	VerifiedAt time.Time `json:"verified_at"`
}

// Policy identifies a trust policy: tally.toml and its keyring.
type Policy struct {
	// ID is "sha256:" of the canonical tally.toml and the keyring's
	// canonical serialization: the same policy however it is encoded.
	ID string `json:"id"`
	// Since is the first-parent commit where this policy took effect.
	Since string `json:"since"`
	// Threshold and Keys are for people reading the file.
	Threshold int      `json:"threshold"`
	Keys      []string `json:"keys"`
}

var (
	hashPattern     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	policyIDPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Parse reads a state file strictly: known fields only, every id well formed.
func Parse(data []byte) (*State, error) {
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadState, maxStateSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the object", ErrBadState)
	}
	bad := func(format string, args ...any) (*State, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadState, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Version != formatVersion:
		return bad("tally_state %d, want %d", s.Version, formatVersion)
	case !hashPattern.MatchString(s.Root) || !hashPattern.MatchString(s.Commit) || !hashPattern.MatchString(s.Policy.Since):
		return bad("root, commit and policy.since must be 40-hex commit ids")
	case !policyIDPattern.MatchString(s.Policy.ID):
		return bad("policy.id %q is not sha256:<64 hex>", s.Policy.ID)
	case s.Namespace == "" || !policy.NamespacePattern.MatchString(s.Namespace):
		return bad("namespace %q", s.Namespace)
	case len(s.Superseded) > maxPrevious:
		return bad("more than %d superseded policies", maxPrevious)
	case s.CommitTime.IsZero() || s.VerifiedAt.IsZero():
		return bad("commit_time and verified_at are required")
	}
	for _, id := range s.Superseded {
		if !policyIDPattern.MatchString(id) {
			return bad("superseded policy %q is not sha256:<64 hex>", id)
		}
	}
	if !slices.IsSorted(s.Superseded) || len(slices.Compact(slices.Clone(s.Superseded))) != len(s.Superseded) {
		return bad("superseded_policies must be sorted and distinct")
	}
	if slices.Contains(s.Superseded, s.Policy.ID) {
		return bad("the current policy is also superseded")
	}
	return &s, nil
}

// Marshal encodes s as Parse reads it.
func (s *State) Marshal() []byte {
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		// A State holds only strings, numbers and times.
		panic(fmt.Sprintf("state: encoding: %v", err))
	}
	return append(out, '\n')
}

// Read reads the state file; a missing file is no state (nil, nil): the
// first verification trusts what it sees and records it.
func Read(file string) (*State, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// Write replaces the state file atomically.
func Write(file string, s *State) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tally-state-*")
	if err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(s.Marshal()); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// Options are the consumer's side of Check.
type Options struct {
	// Keys is the trust root whose signed commits show the repository is
	// alive (--max-age): the consumer's keyring, or nil for the
	// repository's own.
	Keys *sigstore.Keyring
	// MaxAge, when not 0, is how old the newest commit signed by a key of
	// Keys may be.
	MaxAge time.Duration
	// Now is the clock.
	Now time.Time
}

// Check judges the repository at HEAD against the recorded state old (nil
// on first use) and returns the State to record once the verification
// passes. It refuses, with an error wrapping one of ErrOtherRepository,
// ErrRewritten, ErrPolicyRolledBack or ErrFrozen that names the commits and
// times involved, a repository whose history no longer holds the commit
// recorded, whose trust policy is one already superseded, or (with MaxAge)
// whose newest commit signed by a trusted key is older than MaxAge.
func Check(repo *gitstore.Repo, old *State, opts Options) (*State, error) {
	head, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	chain, err := firstParents(repo, head.Tip)
	if err != nil {
		return nil, err
	}
	root := chain[len(chain)-1]
	tipInfo, err := repo.ReadCommit(head.Tip)
	if err != nil {
		return nil, err
	}
	policies, err := policyHistory(repo, chain)
	if err != nil {
		return nil, err
	}
	cur := policies[0]
	next := &State{
		Version: formatVersion, Root: root.String(), Namespace: head.Policy.Namespace,
		Commit: head.Tip.String(), CommitTime: tipInfo.Committer.When.UTC(),
		Policy:     Policy{ID: cur.id, Since: cur.since.String(), Threshold: head.Policy.Threshold},
		VerifiedAt: opts.Now.UTC().Truncate(time.Second),
	}
	for _, k := range head.Keys.Keys() {
		next.Policy.Keys = append(next.Policy.Keys, k.Fingerprint)
	}
	superseded := map[string]bool{}
	for _, p := range policies[1:] {
		superseded[p.id] = true
	}
	if old != nil {
		if old.Root != next.Root {
			return nil, fmt.Errorf("%w: it records namespace %s with first commit %s, this one is %s with first commit %s",
				ErrOtherRepository, old.Namespace, short(old.Root), next.Namespace, short(next.Root))
		}
		in, err := repo.IsAncestor(plumbing.NewHash(old.Commit), head.Tip)
		if err != nil {
			return nil, err
		}
		if !in {
			return nil, fmt.Errorf("%w: commit %s (%s), verified on %s, is not in the history of %s, which ends at %s (%s)",
				ErrRewritten, short(old.Commit), day(old.CommitTime), day(old.VerifiedAt), head.Branch.Short(), short(next.Commit), day(next.CommitTime))
		}
		if cur.id != old.Policy.ID && slices.Contains(old.Superseded, cur.id) {
			return nil, fmt.Errorf("%w: the trust policy in effect since %s is one that the policy recorded (in effect since %s) replaced",
				ErrPolicyRolledBack, short(cur.since.String()), short(old.Policy.Since))
		}
		for _, id := range old.Superseded {
			superseded[id] = true
		}
		if old.Policy.ID != cur.id {
			superseded[old.Policy.ID] = true
		}
	}
	delete(superseded, cur.id)
	next.Superseded = make([]string, 0, len(superseded))
	for id := range superseded {
		next.Superseded = append(next.Superseded, id)
	}
	slices.Sort(next.Superseded)
	if len(next.Superseded) > maxPrevious {
		next.Superseded = next.Superseded[len(next.Superseded)-maxPrevious:]
	}
	if opts.MaxAge > 0 {
		keys := opts.Keys
		if keys == nil {
			keys = head.Keys
		}
		fresh, err := newestSigned(repo, chain, keys)
		if err != nil {
			return nil, err
		}
		limit := opts.Now.Add(-opts.MaxAge)
		switch {
		case fresh == nil:
			return nil, fmt.Errorf("%w: no commit of %s is signed by a trusted key, so nothing shows it is current", ErrFrozen, head.Branch.Short())
		case fresh.Committer.When.Before(limit):
			return nil, fmt.Errorf("%w: the newest commit signed by a trusted key, %s, is from %s, older than --max-age %s",
				ErrFrozen, short(fresh.Hash.String()), fresh.Committer.When.UTC().Format(time.RFC3339), opts.MaxAge)
		}
	}
	return next, nil
}

// firstParents is the first-parent chain from tip to the root, tip first.
func firstParents(repo *gitstore.Repo, tip plumbing.Hash) ([]plumbing.Hash, error) {
	var chain []plumbing.Hash
	for h := tip; ; {
		chain = append(chain, h)
		c, err := repo.ReadCommit(h)
		if err != nil {
			return nil, err
		}
		if len(c.Parents) == 0 {
			return chain, nil
		}
		h = c.Parents[0]
	}
}

type policyAt struct {
	id    string
	since plumbing.Hash
}

// policyHistory lists the trust policies along chain (tip first), newest
// first, each with the oldest commit of its run; the first is the tip's.
// A policy is identified by what it means, not how it is encoded: the
// canonical tally.toml (Policy.Marshal) and the keyring's ID (its canonical
// serialization, revocations included). Commits with no usable policy
// (before tally init, or a policy tally would refuse) are skipped.
func policyHistory(repo *gitstore.Repo, chain []plumbing.Hash) ([]policyAt, error) {
	var out []policyAt
	type blobs struct{ toml, keyring plumbing.Hash }
	ids := map[blobs]string{}
	for _, h := range chain {
		snap, err := repo.Snapshot(h)
		if err != nil {
			return nil, err
		}
		e, err := snap.Stat(policy.PolicyFile)
		if err != nil {
			continue
		}
		data, err := snap.ReadFile(policy.PolicyFile)
		if err != nil {
			return nil, err
		}
		p, err := policy.ParsePolicy(data)
		if err != nil {
			continue
		}
		k, err := snap.Stat(p.Keyring)
		if err != nil {
			continue
		}
		key := blobs{e.Hash, k.Hash}
		id, ok := ids[key]
		if !ok {
			ring, err := snap.ReadFile(p.Keyring)
			if err != nil {
				return nil, err
			}
			kr, err := sigstore.ReadKeyring(ring)
			if err != nil {
				ids[key] = ""
				continue
			}
			sum := sha256.Sum256(append(p.Marshal(), "\nkeyring "+kr.ID()+"\n"...))
			id = "sha256:" + hex.EncodeToString(sum[:])
			ids[key] = id
		}
		if id == "" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].id == id {
			out[n-1].since = h
			continue
		}
		out = append(out, policyAt{id: id, since: h})
	}
	if len(out) == 0 {
		return nil, policy.ErrNoPolicy
	}
	return out, nil
}

// newestSigned is the newest commit of chain whose signature verifies with
// a key of keys valid at its time; nil when there is none.
func newestSigned(repo *gitstore.Repo, chain []plumbing.Hash, keys *sigstore.Keyring) (*gitstore.CommitInfo, error) {
	var entities openpgp.EntityList
	for _, k := range keys.Keys() {
		if e, ok := keys.Entity(k.Fingerprint); ok {
			entities = append(entities, e)
		}
	}
	for _, h := range chain {
		c, err := repo.ReadCommit(h)
		if err != nil {
			return nil, err
		}
		if len(c.Signature) == 0 {
			continue
		}
		d, err := sigstore.VerifyDetached(entities, c.Payload, c.Signature, c.Committer.When)
		if err != nil {
			continue
		}
		if ok, _ := keys.ValidAt(d.Issuer, d.At); ok {
			return c, nil
		}
	}
	return nil, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func day(t time.Time) string { return t.UTC().Format(time.RFC3339) }
