package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// ErrAlreadyInitialised means the repository already has a trust policy.
var ErrAlreadyInitialised = errors.New("already a tally signatures repository")

// ErrDuplicateKey means the same maintainer key was given twice.
var ErrDuplicateKey = errors.New("duplicate key")

// ErrMissingKey means a maintainer listed by fingerprint has no key among
// the keys given.
var ErrMissingKey = errors.New("maintainer key missing")

// PublicKey is a maintainer's armored or binary public key and where it came from.
type PublicKey struct {
	Source string // file name, for error messages
	Data   []byte
}

// InitOptions says how to set up a signatures repository.
type InitOptions struct {
	Namespace      string      // e.g. "stagex"
	IdentityPrefix string      // "" = Namespace
	Threshold      int         // M; 0 = min(2, number of keys)
	Keys           []PublicKey // maintainers' public keys
	// Maintainers, when set, are the primary fingerprints of the maintainer
	// set (StageX's MAINTAINERS): only their keys are taken from Keys and
	// from a keyring the repository holds already; the others are ignored
	// and counted (InitResult.IgnoredKeys). A listed fingerprint without a
	// key is ErrMissingKey.
	Maintainers []string
	// ExtraPaths are the files ("README.md", ".github/workflows/tally-check.yml")
	// or directories ending in "/" outside tally's own that commits may
	// change (tally.toml's extra_paths; see Policy.ExtraPaths).
	ExtraPaths []string
	// Files are committed with the policy (the CI workflow that runs tally
	// check); each path is added to ExtraPaths. None may exist already.
	Files  []gitstore.Change
	Signer sigstore.Signer  // signs the commit when set; its key must be among the keys
	Now    func() time.Time // the clock; time.Now when nil
	// LockWait bounds how long Init waits for another writer of the
	// repository; 0 waits as long as ctx allows (see SignOptions.LockWait).
	LockWait time.Duration
}

// InitResult says what Init did.
type InitResult struct {
	Policy  policy.Policy  `json:"policy"`
	Keys    []sigstore.Key `json:"keys"`
	Adopted int            `json:"adopted_files"` // files of an existing lookaside tree kept as they were
	// IgnoredKeys counts the keys given that are not in InitOptions.Maintainers.
	IgnoredKeys int      `json:"ignored_keys"`
	Commit      string   `json:"commit"`
	Branch      string   `json:"branch"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Init writes the trust policy (tally.toml) and the maintainers' keyring into
// repo and commits them on the checked-out branch. An existing repository that
// already holds a lookaside tree is adopted as it is: nothing in it changes
// but the two new files (and the keyring, when it exists already, only gains keys).
func Init(ctx context.Context, repo *gitstore.Repo, opts InitOptions) (*InitResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	unlock, err := lockRepo(ctx, repo, opts.LockWait)
	if err != nil {
		return nil, err
	}
	defer unlock() //nolint:errcheck // releasing a flock cannot lose data

	branch, tip, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	if branch == "" {
		return nil, ErrDetached
	}
	snap, err := repo.Snapshot(tip)
	if err != nil {
		return nil, err
	}
	if _, err := snap.ReadFile(policy.PolicyFile); err == nil {
		return nil, fmt.Errorf("%w: %s exists", ErrAlreadyInitialised, policy.PolicyFile)
	}

	extra := append([]string(nil), opts.ExtraPaths...)
	for _, f := range opts.Files {
		if _, err := snap.Stat(f.Path); err == nil {
			return nil, fmt.Errorf("%w: %s exists already; tally init adds it only to a repository without it", ErrAlreadyInitialised, f.Path)
		}
		if !slices.Contains(extra, f.Path) {
			extra = append(extra, f.Path)
		}
	}
	p := policy.Policy{Namespace: opts.Namespace, IdentityPrefix: opts.IdentityPrefix, Threshold: opts.Threshold,
		Keyring: policy.DefaultKeyring(opts.Namespace), ExtraPaths: policy.NewNames(extra...)}
	if p.IdentityPrefix == "" {
		p.IdentityPrefix = p.Namespace
	}

	// Keys: those already in the repository's keyring file, then the new ones.
	var all []byte
	if old, err := snap.ReadFile(p.Keyring); err == nil {
		if _, err := sigstore.ReadKeyring(old); err != nil {
			return nil, fmt.Errorf("existing keyring %s: %w", p.Keyring, err)
		}
		all = append(all, old...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	now := opts.Now().UTC().Truncate(time.Second)
	res := &InitResult{Branch: branch.Short()}
	seen := map[string]string{}
	for _, k := range opts.Keys {
		kr, err := sigstore.ReadKeyring(k.Data)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", k.Source, err)
		}
		for _, key := range kr.Keys() {
			if prev, dup := seen[key.Fingerprint]; dup {
				return nil, fmt.Errorf("%w: key %s is given twice (%s and %s)", ErrDuplicateKey, key.Fingerprint, prev, k.Source)
			}
			seen[key.Fingerprint] = k.Source
		}
		var bin bytes.Buffer
		if err := kr.Serialize(&bin); err != nil {
			return nil, err
		}
		all = append(all, bin.Bytes()...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no maintainer keys: give each maintainer's public key with --key-file", policy.ErrBadPolicy)
	}
	keys, err := sigstore.ReadKeyring(all)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if len(opts.Maintainers) > 0 {
		sub, missing, err := keys.Select(opts.Maintainers)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: no key for %s among the %d key(s) given", ErrMissingKey, strings.Join(missing, ", "), len(keys.Keys()))
		}
		res.IgnoredKeys = len(keys.Keys()) - len(sub.Keys())
		keys = sub
	}
	for _, issue := range keys.Check(now) {
		where := seen[issue.Fingerprint]
		if where == "" {
			where = p.Keyring
		}
		if issue.Refuse {
			return nil, fmt.Errorf("key file %s: %w", where, issue)
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s (%s)", issue.Error(), where))
	}
	res.Keys = keys.Keys()
	if p.Threshold == 0 {
		p.Threshold = min(2, len(res.Keys))
	}
	if err := policy.CheckThreshold(p.Threshold, len(res.Keys)); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	res.Policy = p
	var keyring bytes.Buffer
	if err := keys.Serialize(&keyring); err != nil {
		return nil, err
	}

	// An adopted lookaside tree is kept byte for byte; count its files for the report.
	err = snap.Walk(p.Namespace, func(_ string, e gitstore.Entry) error {
		if !e.IsDir() {
			res.Adopted++
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the existing lookaside tree: %w", err)
	}

	changes := []gitstore.Change{{Path: policy.PolicyFile, Data: p.Marshal()}, {Path: p.Keyring, Data: keyring.Bytes()}}
	paths := []string{policy.PolicyFile, p.Keyring}
	for _, f := range opts.Files {
		changes = append(changes, gitstore.Change{Path: f.Path, Data: f.Data})
		paths = append(paths, f.Path)
	}
	if err := repo.CheckPaths(paths); err != nil {
		return nil, err
	}
	req := gitstore.CommitRequest{
		Branch:  branch,
		Changes: changes,
		Message: initMessage(p, res.Keys, res.Adopted),
		Context: ctx,
	}
	if !tip.IsZero() {
		req.Parents = []plumbing.Hash{tip}
	}
	who := object.Signature{Name: "tally", Email: "", When: now}
	if opts.Signer != nil {
		k, ok := keys.Key(opts.Signer.Fingerprint())
		if !ok {
			return nil, fmt.Errorf("%w: %s signs the init commit but is not among the keys", ErrUntrustedSigner, opts.Signer.Fingerprint())
		}
		who = authorOf(k.Name, now)
		req.Sign = opts.Signer.SignDetached
	}
	req.Author, req.Committer = who, who
	hash, err := repo.Commit(req)
	if err != nil {
		return nil, err
	}
	res.Commit = hash.String()
	return res, nil
}

func initMessage(p policy.Policy, keys []sigstore.Key, adopted int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "init: trust policy for %s, %d of %d maintainers\n\n", p.Namespace, p.Threshold, len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k.Fingerprint, k.Name)
	}
	if adopted > 0 {
		fmt.Fprintf(&b, "\nAdopted an existing lookaside tree of %d file(s), unchanged.\n", adopted)
	}
	return b.String()
}
