package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/go-git/go-git/v5/plumbing"
)

// PolicyFile is the path of the trust policy at the root of a signatures repository.
const PolicyFile = "tally.toml"

// BuildsDir holds the build records, one directory per release.
const BuildsDir = "builds"

// ReleasesDir holds the release manifests, one directory per release.
const ReleasesDir = "releases"

// ApprovalsDir holds the maintainers' signed approvals of trust policy
// changes (see package hooks).
const ApprovalsDir = "approvals"

// ErrNoPolicy means the repository has no tally.toml: it is not a tally signatures repository.
var ErrNoPolicy = errors.New("not a tally signatures repository (no " + PolicyFile + ")")

// ErrBadPolicy means tally.toml exists but says something tally cannot accept.
var ErrBadPolicy = errors.New("invalid trust policy")

// Policy is the trust policy of a signatures repository, stored as tally.toml.
type Policy struct {
	// Namespace is the repository path, without registry host, under which the
	// images live ("stagex"); it is also the top directory of the lookaside tree.
	Namespace string `toml:"namespace" json:"namespace"`
	// IdentityPrefix is what signed docker references start with: a signature for
	// image NAME:TAG claims "<IdentityPrefix>/NAME:TAG". It defaults to Namespace,
	// which gives StageX's short form "stagex/core-gcc:14.2.0".
	IdentityPrefix string `toml:"identity_prefix" json:"identity_prefix"`
	// Threshold is M: how many distinct trusted keys must sign the same digest.
	Threshold int `toml:"threshold" json:"threshold"`
	// Keyring is the path, in the repository, of the maintainers' public keys
	// (one binary OpenPGP keyring, StageX-style).
	Keyring string `toml:"keyring" json:"keyring"`
	// ProtectedRefs (optional) lists the references that may only move
	// forward and never be deleted: a full name ("refs/heads/main") or a
	// prefix ending in "/" ("refs/heads/release/"). Empty means every branch.
	// Tags are never moved or deleted, whatever this says.
	ProtectedRefs Names `toml:"protected_refs" json:"protected_refs,omitempty"`
	// ExtraPaths (optional) lists files ("README.md") or directories ending
	// in "/" ("docs/") outside tally's own that maintainers' commits may
	// change; anything else that is not tally's is refused by tally check.
	ExtraPaths Names `toml:"extra_paths" json:"extra_paths,omitempty"`
}

// Names is a list of strings kept as one comparable value, so that Policy
// stays comparable with ==. In tally.toml and in JSON it is an array of
// strings; no entry may be empty or hold a newline.
type Names string

// NewNames makes a Names from a list.
func NewNames(list ...string) Names { return Names(strings.Join(list, "\n")) }

// List returns the entries, nil when there are none.
func (n Names) List() []string {
	if n == "" {
		return nil
	}
	return strings.Split(string(n), "\n")
}

// UnmarshalTOML implements toml.Unmarshaler: an array of strings.
func (n *Names) UnmarshalTOML(v any) error {
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want an array of strings, got %T", v)
	}
	list := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return fmt.Errorf("want an array of strings, got an element of type %T", it)
		}
		if s == "" || strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("entry %q is empty or holds a line break", s)
		}
		list = append(list, s)
	}
	*n = NewNames(list...)
	return nil
}

// MarshalJSON implements json.Marshaler: an array of strings.
func (n Names) MarshalJSON() ([]byte, error) {
	list := n.List()
	if list == nil {
		list = []string{}
	}
	return json.Marshal(list)
}

// UnmarshalJSON implements json.Unmarshaler: an array of strings.
func (n *Names) UnmarshalJSON(data []byte) error {
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	for _, s := range list {
		if s == "" || strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("entry %q is empty or holds a line break", s)
		}
	}
	*n = NewNames(list...)
	return nil
}

func quoteList(n Names) string {
	list := n.List()
	for i, s := range list {
		list[i] = quote(s)
	}
	return "[" + strings.Join(list, ", ") + "]"
}

// NamespacePattern is the docker repository path grammar (lowercase components
// separated by slashes), which the lookaside tree mirrors.
var NamespacePattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// IsImageName reports whether s is an image name below the namespace, as the
// lookaside tree spells it ("core-gcc"): the grammar of NamespacePattern.
func IsImageName(s string) bool { return NamespacePattern.MatchString(s) }

// prefixPattern accepts an optional registry host (with port) before the repository path.
var prefixPattern = regexp.MustCompile(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// DefaultKeyring returns the keyring path StageX uses for a namespace: "<namespace>-keyring.pgp"
// with slashes turned into dashes.
func DefaultKeyring(namespace string) string {
	return strings.ReplaceAll(namespace, "/", "-") + "-keyring.pgp"
}

// MaxPolicySize bounds tally.toml: a policy is a dozen short lines, and a
// huge one (a long comment, say) would cost every later check to read.
const MaxPolicySize = 64 << 10

// ParsePolicy reads tally.toml strictly: unknown keys and missing required
// keys are errors, and so is a file larger than MaxPolicySize.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	if len(data) > MaxPolicySize {
		return Policy{}, fmt.Errorf("%w: %s is %d bytes, more than the %d a trust policy may have", ErrBadPolicy, PolicyFile, len(data), MaxPolicySize)
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&p)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %s: %v", ErrBadPolicy, PolicyFile, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Policy{}, fmt.Errorf("%w: %s: unknown key %q", ErrBadPolicy, PolicyFile, und[0].String())
	}
	for _, k := range []string{"namespace", "threshold", "keyring"} {
		if !md.IsDefined(k) {
			return Policy{}, fmt.Errorf("%w: %s: missing %q", ErrBadPolicy, PolicyFile, k)
		}
	}
	if p.IdentityPrefix == "" {
		p.IdentityPrefix = p.Namespace
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Marshal encodes the policy as tally.toml, with a comment saying what each key means.
func (p Policy) Marshal() []byte {
	var b strings.Builder
	b.WriteString("# tally trust policy: who must sign what before an image is trusted.\n")
	b.WriteString("# Changing it changes who is trusted; see README \"Guarding a signatures repository\".\n\n")
	b.WriteString("# Images live at <namespace>/<name>; the lookaside tree is <namespace>/<name>@sha256=<hex>/signature-N.\n")
	fmt.Fprintf(&b, "namespace = %s\n", quote(p.Namespace))
	b.WriteString("# Signatures claim the identity <identity_prefix>/<name>:<tag>.\n")
	fmt.Fprintf(&b, "identity_prefix = %s\n", quote(p.Prefix()))
	b.WriteString("# M: distinct trusted maintainer keys that must sign the same digest.\n")
	fmt.Fprintf(&b, "threshold = %d\n", p.Threshold)
	b.WriteString("# The maintainers' public keys (binary OpenPGP keyring).\n")
	fmt.Fprintf(&b, "keyring = %s\n", quote(p.Keyring))
	if p.ProtectedRefs != "" {
		b.WriteString("# References that only move forward (\"refs/heads/main\", or a prefix ending in \"/\"); tags never move.\n")
		fmt.Fprintf(&b, "protected_refs = %s\n", quoteList(p.ProtectedRefs))
	}
	if p.ExtraPaths != "" {
		b.WriteString("# Files, or directories ending in \"/\", that maintainers may change besides tally's own.\n")
		fmt.Fprintf(&b, "extra_paths = %s\n", quoteList(p.ExtraPaths))
	}
	return []byte(b.String())
}

func quote(s string) string {
	var b bytes.Buffer
	// toml encodes a bare string value as a quoted TOML string.
	_ = toml.NewEncoder(&b).Encode(map[string]string{"v": s})
	return strings.TrimSpace(strings.TrimPrefix(b.String(), "v = "))
}

// Prefix is the identity prefix, or the namespace when none is set.
func (p Policy) Prefix() string {
	if p.IdentityPrefix == "" {
		return p.Namespace
	}
	return p.IdentityPrefix
}

// Reference returns the docker reference a signature for image name:tag claims.
func (p Policy) Reference(name, tag string) string {
	return p.Prefix() + "/" + name + ":" + tag
}

// Repository returns the docker repository (without tag) that signatures in the
// lookaside directory of image name must claim.
func (p Policy) Repository(name string) string {
	return p.Prefix() + "/" + name
}

// CheckThreshold refuses a threshold that no set of keys can meet honestly:
// below 1, or above the number of trusted keys.
func CheckThreshold(threshold, keys int) error {
	switch {
	case threshold < 1:
		return fmt.Errorf("%w: threshold %d: it must be at least 1", ErrBadPolicy, threshold)
	case threshold > keys:
		return fmt.Errorf("%w: threshold %d is more than the %d trusted key(s): no release could ever meet it", ErrBadPolicy, threshold, keys)
	}
	return nil
}

// Validate checks the fields of a policy as ParsePolicy does.
func (p Policy) Validate() error {
	if !NamespacePattern.MatchString(p.Namespace) {
		return fmt.Errorf("%w: namespace %q is not a repository path (lowercase letters, digits, separators, slashes)", ErrBadPolicy, p.Namespace)
	}
	if top := strings.SplitN(p.Namespace, "/", 2)[0]; top == BuildsDir || top == ReleasesDir || top == ApprovalsDir {
		return fmt.Errorf("%w: namespace %q is reserved for tally's own records", ErrBadPolicy, p.Namespace)
	}
	if !prefixPattern.MatchString(p.Prefix()) {
		return fmt.Errorf("%w: identity_prefix %q is not a repository reference prefix", ErrBadPolicy, p.Prefix())
	}
	if p.Threshold < 1 {
		return fmt.Errorf("%w: threshold %d: it must be at least 1", ErrBadPolicy, p.Threshold)
	}
	clean := path.Clean(p.Keyring)
	if p.Keyring == "" || clean != p.Keyring || strings.HasPrefix(clean, "../") || clean == ".." ||
		path.IsAbs(clean) || strings.Contains(clean, "/") || clean == PolicyFile {
		return fmt.Errorf("%w: keyring %q must be a plain file name at the repository root", ErrBadPolicy, p.Keyring)
	}
	for _, r := range p.ProtectedRefs.List() {
		name := strings.TrimSuffix(r, "/")
		if !strings.HasPrefix(r, "refs/") || plumbing.ReferenceName(name).Validate() != nil || strings.Count(name, "/") < 1 {
			return fmt.Errorf("%w: protected_refs entry %q is not a reference name (refs/heads/main) or a prefix ending in \"/\" (refs/heads/release/)", ErrBadPolicy, r)
		}
	}
	for _, e := range p.ExtraPaths.List() {
		name := strings.TrimSuffix(e, "/")
		top := strings.SplitN(name, "/", 2)[0]
		switch {
		case name == "" || path.Clean(name) != name || path.IsAbs(name) || name == "." || strings.HasPrefix(name, "../") || name == ".." ||
			strings.ContainsAny(name, "\\\x00") || strings.EqualFold(top, ".git"):
			return fmt.Errorf("%w: extra_paths entry %q is not a clean relative path", ErrBadPolicy, e)
		case name == PolicyFile || name == p.Keyring || top == BuildsDir || top == ReleasesDir || top == ApprovalsDir ||
			name == p.Namespace || strings.HasPrefix(name, p.Namespace+"/") || strings.HasPrefix(p.Namespace, name+"/"):
			return fmt.Errorf("%w: extra_paths entry %q overlaps tally's own files", ErrBadPolicy, e)
		}
	}
	return nil
}
