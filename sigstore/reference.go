package sigstore

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The docker reference grammar, as containers/image parses signed identities
// (github.com/docker/distribution/reference, the version bookworm's clients
// vendor). It is replicated here rather than taken from go-containerregistry's
// name package, which is laxer: it accepts "a//b", "-a" and tags starting
// with "." that clients reject.
const (
	defaultDomain       = "docker.io"
	legacyDefaultDomain = "index.docker.io"
	officialRepoName    = "library"
	nameTotalLengthMax  = 255

	alphanumeric  = `[a-z0-9]+`
	separator     = `(?:[._]|__|[-]+)`
	pathComponent = alphanumeric + `(?:` + separator + alphanumeric + `)*`
	domainLabel   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainPattern = domainLabel + `(?:\.` + domainLabel + `)*(?::[0-9]+)?`
	tagPattern    = `[\w][\w.-]{0,127}`
	digestPattern = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	namePattern   = `(?:` + domainPattern + `/)?` + pathComponent + `(?:/` + pathComponent + `)*`
)

var (
	referenceRegexp     = regexp.MustCompile(`^(` + namePattern + `)(?::(` + tagPattern + `))?(?:@(` + digestPattern + `))?$`)
	pathComponentRegexp = regexp.MustCompile(`^` + pathComponent + `$`)
	identifierRegexp    = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// dockerReference is a parsed, normalised docker reference.
type dockerReference struct {
	repository string // normalised: domain + "/" + path, e.g. docker.io/stagex/core-gcc
	tag        string // "" when absent
	digest     string // "" when absent
}

// parseDockerReference parses s like containers/image's
// reference.ParseNormalizedNamed: a short name such as "stagex/core-gcc:1"
// normalises to "docker.io/stagex/core-gcc", and "busybox" to
// "docker.io/library/busybox".
func parseDockerReference(s string) (dockerReference, error) {
	if s == "" {
		return dockerReference{}, errors.New("empty reference")
	}
	if identifierRegexp.MatchString(s) {
		return dockerReference{}, fmt.Errorf("%q is a 64-hex image ID, not a repository name", s)
	}
	domain, remainder := splitDockerDomain(s)
	remoteName, _, _ := strings.Cut(remainder, ":")
	remoteName, _, _ = strings.Cut(remoteName, "@")
	if strings.ToLower(remoteName) != remoteName {
		return dockerReference{}, fmt.Errorf("repository name %q must be lowercase", remoteName)
	}
	m := referenceRegexp.FindStringSubmatch(domain + "/" + remainder)
	if m == nil {
		return dockerReference{}, fmt.Errorf("%q is not a valid docker reference", s)
	}
	if len(m[1]) > nameTotalLengthMax {
		return dockerReference{}, fmt.Errorf("repository name %q is longer than %d characters", m[1], nameTotalLengthMax)
	}
	return dockerReference{repository: m[1], tag: m[2], digest: m[3]}, nil
}

// splitDockerDomain splits name into a registry domain and the rest, the
// way docker/distribution's normalisation does.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, found := strings.Cut(name, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost" && strings.ToLower(first) == first) {
		domain, remainder = defaultDomain, name
	} else {
		domain, remainder = first, rest
	}
	if domain == legacyDefaultDomain {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.Contains(remainder, "/") {
		remainder = officialRepoName + "/" + remainder
	}
	return domain, remainder
}

// NormalizeRepository returns the canonical form of a docker repository name,
// as containers/image compares signed identities: "stagex/core-gcc" and
// "index.docker.io/stagex/core-gcc" both give "docker.io/stagex/core-gcc".
// A tag or digest is an error: this names a repository, not an image.
//
// Accepted names are remembered (see refCache): every signature file of a
// verify checks its directory's repository.
func NormalizeRepository(name string) (string, error) {
	if ref, ok := repositoryCache.get(name); ok {
		return ref.repository, nil
	}
	ref, err := parseDockerReference(name)
	if err != nil {
		return "", fmt.Errorf("parsing repository %q: %w", name, err)
	}
	if ref.tag != "" || ref.digest != "" {
		return "", fmt.Errorf("parsing repository %q: a repository has no tag or digest", name)
	}
	repositoryCache.add(name, ref)
	return ref.repository, nil
}
