package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

// What a consumer policy requires of every image (PolicyOptions.Require).
const (
	// RequireQuorum pins, per repository of a release, the M keys that
	// signed every platform of its image: one signedBy each.
	RequireQuorum = "quorum"
	// RequireAll requires a signature by every maintainer: one signedBy per key.
	RequireAll = "all"
	// RequireAny accepts a signature by any one maintainer: one signedBy
	// holding the whole keyring.
	RequireAny = "any"
)

// ErrInexpressible means stock containers policy cannot express the
// requirement asked for (for instance no M keys signed every platform of an
// image, while a policy scope covers a whole repository).
var ErrInexpressible = errors.New("stock containers policy cannot express this")

// ErrBadPolicyOptions means the registry, lookaside or requirement given to
// ExportPolicy is malformed.
var ErrBadPolicyOptions = errors.New("invalid policy export options")

// PolicyOptions says for which registry and lookaside to write a consumer policy.
type PolicyOptions struct {
	// Registry is REGISTRY/NAMESPACE, where consumers pull the images from
	// (as given to tally release publish --to).
	Registry string
	// Lookaside is the URL the signatures are served at: a static HTTP
	// server over a checkout of the signatures repository, or file://.
	Lookaside string
	// Require is RequireQuorum (when ""), RequireAll or RequireAny.
	Require string
	// Release is the release whose signers RequireQuorum pins; with the
	// other modes it is optional and only checked.
	Release string
	// Registries are more REGISTRY/NAMESPACE consumers pull from (StageX:
	// docker.io/stagex and quay.io/stagex): one policy and one registries.d
	// file cover Registry and each of them.
	Registries []string
	// Mirrors are REGISTRY/NAMESPACE that registries.conf mirrors or
	// rewrites pulls to: containers/image looks signatures up under the
	// registry it actually pulls from, so registries.d points each at the
	// lookaside too. The policy stays that of the registries pulled by name.
	Mirrors []string
	// AnyTag gives each image of the release its own scope whose
	// signatures match by repository (exactRepository), so pulls by any
	// tag (:latest, :sx<release>) pass, as well as by :<version> and digest;
	// it needs Release. The cost: any signed image of that repository then
	// passes under any tag, an older release's included (rollback).
	AnyTag bool
	// Now is the clock for key lifetimes; time.Now when nil.
	Now func() time.Time
}

// ConsumerPolicy is a containers policy for podman, skopeo and CRI-O: a
// policy.json and a registries.d file, with notes on what it can and cannot
// express. Keys are embedded (keyData), so the files stand alone.
type ConsumerPolicy struct {
	Require  string `json:"require"`
	Registry string `json:"registry"` // the first scope, fully expanded ("docker.io/stagex")
	// Registries are every registry scope the policy covers, Registry first.
	Registries []string `json:"registries"`
	// Mirrors are the registries.d entries added for registries.conf mirrors.
	Mirrors   []string `json:"mirrors,omitempty"`
	AnyTag    bool     `json:"any_tag,omitempty"`
	Lookaside string   `json:"lookaside"`
	Release   string   `json:"release,omitempty"`
	Threshold int      `json:"threshold"`
	// Identity is how signed identities are matched: "matchRepoDigestOrExact"
	// or, when Registry is not the signed identity prefix, "remapIdentity".
	Identity     string        `json:"identity"`
	SignedPrefix string        `json:"signed_prefix"`
	Scopes       []PolicyScope `json:"scopes"`
	// RegistriesFile is the name of the file in registries.d/.
	RegistriesFile string `json:"registries_file"`
	// Notes explain what the policy requires and what stock policy cannot express.
	Notes []string `json:"notes"`

	// PolicyJSON and RegistriesYAML are the files' bytes.
	PolicyJSON     []byte `json:"-"`
	RegistriesYAML []byte `json:"-"`
}

// PolicyScope is one docker scope of policy.json and what it requires.
type PolicyScope struct {
	Scope  string `json:"scope"`
	Reject bool   `json:"reject,omitempty"`
	// Keys are the keys whose signatures are required: each one (SignedBy
	// per key) unless AnyOf, when one signature by any of them is enough.
	Keys  []sigstore.Key `json:"keys,omitempty"`
	AnyOf bool           `json:"any_of,omitempty"`
}

// containers-policy.json(5) documents, as far as tally writes them.
type policyDoc struct {
	Default    []policyRequirement                       `json:"default"`
	Transports map[string]map[string][]policyRequirement `json:"transports"`
}

type policyRequirement struct {
	Type           string          `json:"type"`
	KeyType        string          `json:"keyType,omitempty"`
	KeyData        []byte          `json:"keyData,omitempty"` // base64 in JSON, as the format wants
	SignedIdentity *policyIdentity `json:"signedIdentity,omitempty"`
}

type policyIdentity struct {
	Type             string `json:"type"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
	DockerRepository string `json:"dockerRepository,omitempty"`
}

// ExportPolicy writes the strongest consumer policy stock clients can
// enforce for the repository's images in opts.Registry, under the trust
// policy of the checked-out branch. With RequireQuorum the release must be
// ready (and, when cut, its tag is judged as Publish judges it); each of its
// images gets its own scope requiring one signature from each of M keys that
// signed every platform of it, and the rest of the namespace is rejected.
func ExportPolicy(ctx context.Context, repo *gitstore.Repo, opts PolicyOptions) (*ConsumerPolicy, error) {
	if opts.Require == "" {
		opts.Require = RequireQuorum
	}
	switch opts.Require {
	case RequireQuorum, RequireAll, RequireAny:
	default:
		return nil, fmt.Errorf("%w: require %q: want quorum, all or any", ErrBadPolicyOptions, opts.Require)
	}
	if opts.Require == RequireQuorum && opts.Release == "" {
		return nil, fmt.Errorf("%w: require quorum pins the keys that signed one release: name the release", ErrBadPolicyOptions)
	}
	if opts.AnyTag && opts.Release == "" {
		return nil, fmt.Errorf("%w: any tag pins the images of one release: name the release", ErrBadPolicyOptions)
	}
	registries, err := normalizeRegistries(append([]string{opts.Registry}, opts.Registries...), "registry")
	if err != nil {
		return nil, err
	}
	mirrors, err := normalizeRegistries(opts.Mirrors, "mirror")
	if err != nil {
		return nil, err
	}
	for _, m := range mirrors {
		if slices.Contains(registries, m) {
			return nil, fmt.Errorf("%w: mirror %q is also a registry", ErrBadPolicyOptions, m)
		}
	}
	lookaside, err := checkLookaside(opts.Lookaside)
	if err != nil {
		return nil, err
	}
	head, err := policy.LoadHead(repo)
	if err != nil {
		return nil, err
	}
	signedPrefix, err := normalizePrefix(head.Policy.Prefix())
	if err != nil {
		return nil, fmt.Errorf("%w: identity_prefix %q: %v", policy.ErrBadPolicy, head.Policy.Prefix(), err)
	}

	var images []ReleasedImage
	if opts.Release != "" {
		if _, cut := tagTarget(repo, opts.Release); cut {
			c, err := loadCut(ctx, repo, opts.Release, opts.Now)
			if err != nil {
				return nil, err
			}
			images = c.manifest.Images
		} else {
			if err := policy.CheckReleaseName(opts.Release); err != nil {
				return nil, err
			}
			plan, err := planAt(ctx, head, opts.Release, opts.Now)
			if err != nil {
				return nil, err
			}
			if !plan.Ready() {
				return nil, &NotReadyError{Plan: plan}
			}
			images = plan.Released()
		}
	}

	c := &ConsumerPolicy{Require: opts.Require, Registry: registries[0], Registries: registries, Mirrors: mirrors, AnyTag: opts.AnyTag,
		Lookaside: lookaside, Release: opts.Release,
		Threshold: head.Policy.Threshold, SignedPrefix: signedPrefix, Identity: "matchRepoDigestOrExact",
		RegistriesFile: strings.ReplaceAll(head.Policy.Namespace, "/", "-") + ".yaml"}

	keys := head.Keys.Keys()
	keyData := func(fprs ...string) ([]byte, error) {
		var b bytes.Buffer
		for _, f := range fprs {
			e, ok := head.Keys.Entity(f)
			if !ok {
				return nil, fmt.Errorf("%w: key %s signed the release but is not in the keyring", ErrInexpressible, f)
			}
			if err := e.Serialize(&b); err != nil {
				return nil, fmt.Errorf("serializing key %s: %w", f, err)
			}
		}
		return b.Bytes(), nil
	}
	signedBy := func(identity *policyIdentity, fprs ...string) (policyRequirement, error) {
		data, err := keyData(fprs...)
		return policyRequirement{Type: "signedBy", KeyType: "GPGKeys", KeyData: data, SignedIdentity: identity}, err
	}
	allFprs := make([]string, len(keys))
	for i, k := range keys {
		allFprs[i] = k.Fingerprint
	}
	// The keys each scope requires: per image of the release (quorum, or
	// any tag), or for the whole namespace.
	type need struct {
		name  string // image name; "" for the namespace
		keys  []sigstore.Key
		anyOf bool
	}
	var needs []need
	switch {
	case opts.Require == RequireQuorum:
		for _, img := range images {
			pinned, err := pinKeys(img, head.Policy.Threshold)
			if err != nil {
				return nil, err
			}
			needs = append(needs, need{name: img.Name, keys: pinned})
		}
	case opts.AnyTag:
		for _, img := range images {
			needs = append(needs, need{name: img.Name, keys: keys, anyOf: opts.Require == RequireAny})
		}
	default:
		needs = append(needs, need{keys: keys, anyOf: opts.Require == RequireAny})
	}
	scopes := map[string][]policyRequirement{}
	for _, registry := range registries {
		var identity *policyIdentity
		if registry != signedPrefix {
			c.Identity = "remapIdentity"
			identity = &policyIdentity{Type: "remapIdentity", Prefix: registry, SignedPrefix: signedPrefix}
		}
		for _, n := range needs {
			scope, ident := registry, identity
			if n.name != "" {
				scope = registry + "/" + n.name
			}
			if opts.AnyTag {
				// The signed repository, whatever the tag pulled: in the
				// remap setup too, since the pulled name is not compared.
				ident = &policyIdentity{Type: "exactRepository", DockerRepository: signedPrefix + "/" + n.name}
			}
			if n.anyOf {
				req, err := signedBy(ident, allFprs...)
				if err != nil {
					return nil, err
				}
				scopes[scope] = []policyRequirement{req}
			} else {
				for _, k := range n.keys {
					req, err := signedBy(ident, k.Fingerprint)
					if err != nil {
						return nil, err
					}
					scopes[scope] = append(scopes[scope], req)
				}
			}
			c.Scopes = append(c.Scopes, PolicyScope{Scope: scope, Keys: n.keys, AnyOf: n.anyOf})
		}
		if len(needs) == 0 || needs[0].name != "" {
			scopes[registry] = []policyRequirement{{Type: "reject"}}
			c.Scopes = append(c.Scopes, PolicyScope{Scope: registry, Reject: true})
		}
	}
	if opts.AnyTag {
		c.Identity = "exactRepository"
	}
	doc := policyDoc{Default: []policyRequirement{{Type: "reject"}}, Transports: map[string]map[string][]policyRequirement{"docker": scopes}}
	if c.PolicyJSON, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return nil, err
	}
	c.PolicyJSON = append(c.PolicyJSON, '\n')
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "# Written by tally policy export: where podman, skopeo and CRI-O find the\n"+
		"# signatures of the images in %s.\n", strings.Join(registries, ", "))
	if len(mirrors) > 0 {
		fmt.Fprintf(&yaml, "# Mirrors (registries.conf) pulled from instead: %s.\n", strings.Join(mirrors, ", "))
	}
	yaml.WriteString("docker:\n")
	for _, r := range append(slices.Clone(registries), mirrors...) {
		fmt.Fprintf(&yaml, "  %s:\n    lookaside: %s\n", strconv.Quote(r), strconv.Quote(lookaside))
	}
	c.RegistriesYAML = []byte(yaml.String())
	c.Notes = policyNotes(c, head.Policy, len(keys), len(images))
	return c, nil
}

// normalizeRegistries expands each REGISTRY/NAMESPACE and refuses
// malformed ones and repeats.
func normalizeRegistries(list []string, what string) ([]string, error) {
	var out []string
	for _, r := range list {
		if r == "" && what == "registry" && len(out) == 0 && len(list) > 1 {
			continue // only more registries given
		}
		n, err := normalizePrefix(r)
		if err != nil || !strings.Contains(n, "/") {
			return nil, fmt.Errorf("%w: %s %q: want REGISTRY/NAMESPACE, like 127.0.0.1:5000/stagex", ErrBadPolicyOptions, what, r)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%w: %s %q is given twice", ErrBadPolicyOptions, what, r)
		}
		out = append(out, n)
	}
	return out, nil
}

// normalizePrefix expands a repository prefix ("stagex", "ghcr.io/stagex")
// the way containers/image expands image names ("docker.io/stagex"), without
// the "library/" that a one-component image name would get.
func normalizePrefix(prefix string) (string, error) {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return "", fmt.Errorf("%q is not a repository prefix", prefix)
	}
	full, err := sigstore.NormalizeRepository(prefix + "/x")
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(full, "/x"), nil
}

// pinKeys picks, for one image, M keys that signed every one of its
// platforms (the first M by fingerprint).
func pinKeys(img ReleasedImage, m int) ([]sigstore.Key, error) {
	count := map[string]int{}
	byFpr := map[string]sigstore.Key{}
	for _, p := range img.Platforms {
		for _, s := range p.Signers {
			count[s.Fingerprint]++
			byFpr[s.Fingerprint] = s
		}
	}
	var all []sigstore.Key
	for f, n := range count {
		if n == len(img.Platforms) {
			all = append(all, byFpr[f])
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Fingerprint < all[j].Fingerprint })
	if len(all) < m {
		var per []string
		for _, p := range img.Platforms {
			names := make([]string, len(p.Signers))
			for i, s := range p.Signers {
				names[i] = ShortName(s.Name)
			}
			per = append(per, p.Platform+": "+strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("%w: image %s: only %d key(s) signed all its platforms (%s) and a policy scope covers every platform of a repository, so no %d keys can be pinned",
			ErrInexpressible, img.Name, len(all), strings.Join(per, "; "), m)
	}
	return all[:m], nil
}

// checkLookaside accepts an absolute http, https or file URL.
func checkLookaside(s string) (string, error) {
	u, err := url.Parse(s)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: lookaside %q: %s", ErrBadPolicyOptions, s, why)
	}
	switch {
	case err != nil:
		return bad(err.Error())
	case u.Scheme == "https" || u.Scheme == "http":
		if u.Host == "" {
			return bad("no host")
		}
	case u.Scheme == "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return bad("want file:///absolute/path")
		}
	default:
		return bad("want an https://, http:// or file:/// URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return bad("no query, fragment or user information")
	}
	return strings.TrimSuffix(s, "/"), nil
}

// policyNotes says, in plain words, what the policy requires and what stock
// policy cannot express.
func policyNotes(c *ConsumerPolicy, p policy.Policy, maintainers, images int) []string {
	var notes []string
	switch c.Require {
	case RequireQuorum:
		notes = append(notes, fmt.Sprintf("require quorum: each of the %d image(s) of release %s must carry a signature by each of the %d keys that signed all its platforms (one signedBy per key); every other image in %s is rejected.",
			images, c.Release, p.Threshold, c.Registry))
		if p.Threshold < maintainers {
			notes = append(notes, fmt.Sprintf("Stock policy cannot say \"any %d of these %d maintainers\": it pins the keys that signed this release. A later release signed by another %d of the %d is refused, so export the policy again for each release, or check with tally verify, which counts %d-of-%d itself.",
				p.Threshold, maintainers, p.Threshold, maintainers, p.Threshold, maintainers))
		} else {
			notes = append(notes, fmt.Sprintf("With a quorum of %d of %d this is exactly the repository's rule, and stays so for later releases.", p.Threshold, maintainers))
		}
	case RequireAll:
		notes = append(notes, fmt.Sprintf("require all: every image in %s must carry a signature by each of the %d maintainers (one signedBy per key).", c.Registry, maintainers))
		if p.Threshold < maintainers {
			notes = append(notes, fmt.Sprintf("This is stricter than the repository's quorum of %d of %d: a release that met quorum without every maintainer is refused. Stock policy cannot count %d-of-%d; tally verify can.",
				p.Threshold, maintainers, p.Threshold, maintainers))
		} else {
			notes = append(notes, fmt.Sprintf("With a quorum of %d of %d this is exactly the repository's rule.", p.Threshold, maintainers))
		}
	case RequireAny:
		notes = append(notes, fmt.Sprintf("require any: one signature by any of the %d maintainers is enough for an image in %s (one signedBy holding the whole keyring).", maintainers, c.Registry))
		if p.Threshold > 1 {
			notes = append(notes, fmt.Sprintf("This is WEAKER than the repository's quorum of %d: one maintainer's key alone is trusted. Stock policy cannot count %d-of-%d; use --require quorum for the strongest form it can express, or tally verify.",
				p.Threshold, p.Threshold, maintainers))
		}
	}
	if c.Identity == "remapIdentity" {
		notes = append(notes, fmt.Sprintf("Signatures name images as %s/<name>:<version>; images pulled from %s are matched against them with remapIdentity.", c.SignedPrefix, c.Registry))
	}
	if c.AnyTag {
		notes = append(notes, fmt.Sprintf("any tag: each image of release %s has its own scope whose signatures are matched by repository (exactRepository), so pulls by :<version>, :sx<release>, :latest or digest pass when the image carries the required signatures. The cost: any signed image of that repository passes under any tag, so a registry can serve an older signed release as :latest (a rollback), and an image released later is refused until you export again. Without it, only :<version> and digest pulls pass.", c.Release))
	} else {
		notes = append(notes, "A signature names one version tag: pull by :<version> or by digest. Tags such as :latest and :sx<release> match no signature, so stock clients refuse them; --any-tag admits them, at the cost of rollbacks.")
	}
	if len(c.Registries) > 1 {
		notes = append(notes, fmt.Sprintf("The policy and registries.d cover each of %s alike.", strings.Join(c.Registries, ", ")))
	}
	if len(c.Mirrors) > 0 {
		notes = append(notes, fmt.Sprintf("registries.d also points the mirrors %s at the lookaside: containers/image looks signatures up under the registry it actually pulls from, while the policy judges the name you pulled.", strings.Join(c.Mirrors, ", ")))
	}
	path := c.Registry[strings.IndexByte(c.Registry, '/')+1:]
	notes = append(notes, fmt.Sprintf("registries.d/%s points clients at %s: they read %s/%s/<name>@sha256=<hex>/signature-1, -2, … and stop at the first missing number.",
		c.RegistriesFile, c.Lookaside, c.Lookaside, path))
	if path != p.Namespace {
		notes = append(notes, fmt.Sprintf("The signatures repository keeps them under %s/, not %s/: serve them at that path, or publish to REGISTRY/%s.", p.Namespace, path, p.Namespace))
	}
	notes = append(notes, "policy.json rejects every other image (its default is reject): to keep pulling other images, merge its transports.docker entries into /etc/containers/policy.json.")
	return notes
}

// WriteDir writes policy.json and registries.d/<file> into dir, creating it.
func (c *ConsumerPolicy) WriteDir(dir string) error {
	regd := filepath.Join(dir, "registries.d")
	if err := os.MkdirAll(regd, 0o755); err != nil {
		return fmt.Errorf("writing the policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), c.PolicyJSON, 0o644); err != nil {
		return fmt.Errorf("writing the policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(regd, c.RegistriesFile), c.RegistriesYAML, 0o644); err != nil {
		return fmt.Errorf("writing the policy: %w", err)
	}
	return nil
}
