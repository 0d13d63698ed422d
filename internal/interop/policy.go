package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Policy is a containers policy.json document (containers-policy.json(5)),
// as read by skopeo and podman.
type Policy struct {
	// Default applies to every image that no transport scope matches.
	Default []Requirement `json:"default"`
	// Transports maps a transport ("docker") to scopes (a registry, a
	// repository or a prefix of one) and their requirements, all of which
	// must hold.
	Transports map[string]map[string][]Requirement `json:"transports,omitempty"`
}

// Requirement is one policy requirement: "insecureAcceptAnything", "reject"
// or "signedBy" with its key and identity fields.
type Requirement struct {
	Type           string    `json:"type"`
	KeyType        string    `json:"keyType,omitempty"`
	KeyPath        string    `json:"keyPath,omitempty"`
	KeyPaths       []string  `json:"keyPaths,omitempty"`
	KeyData        []byte    `json:"keyData,omitempty"` // JSON base64, as the format wants
	SignedIdentity *Identity `json:"signedIdentity,omitempty"`
}

// Identity is a signedBy requirement's signedIdentity: "matchRepoDigestOrExact"
// (the default when absent), "matchRepository", "matchExact", "exactReference",
// "exactRepository" or "remapIdentity".
type Identity struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference,omitempty"`
	DockerRepository string `json:"dockerRepository,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
}

// AcceptAnything returns the "insecureAcceptAnything" requirement.
func AcceptAnything() Requirement { return Requirement{Type: "insecureAcceptAnything"} }

// Reject returns the "reject" requirement.
func Reject() Requirement { return Requirement{Type: "reject"} }

// SignedBy returns a "signedBy" requirement trusting the GPG keys in the
// keyring file keyPath; identity may be nil for the default
// (matchRepoDigestOrExact).
func SignedBy(keyPath string, identity *Identity) Requirement {
	return Requirement{Type: "signedBy", KeyType: "GPGKeys", KeyPath: keyPath, SignedIdentity: identity}
}

// DockerPolicy returns a policy that applies reqs to images in the docker
// scope (for example "127.0.0.1:5000/stagex") and rejects every other image.
func DockerPolicy(scope string, reqs ...Requirement) Policy {
	return Policy{
		Default:    []Requirement{Reject()},
		Transports: map[string]map[string][]Requirement{"docker": {scope: reqs}},
	}
}

// WritePolicy writes doc as JSON to policy.json in a new temporary directory
// and returns the file's path. doc is usually a [Policy]; pass a
// json.RawMessage to write policy bytes made elsewhere (tally's own export).
func WritePolicy(t testing.TB, doc any) string {
	t.Helper()
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("encoding policy.json: %v", err)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatalf("writing policy.json: %v", err)
	}
	return path
}

// WriteRegistriesD writes a registries.d directory with one file that points
// the docker scope (for example "127.0.0.1:5000/stagex") at the lookaside
// directory lookasideDir as a file:// URL, both for reading ("lookaside") and
// for skopeo --sign-by writing ("lookaside-staging"). It returns the
// directory, for skopeo --registries.d.
func WriteRegistriesD(t testing.TB, scope, lookasideDir string) string {
	t.Helper()
	abs, err := filepath.Abs(lookasideDir)
	if err != nil {
		t.Fatalf("registries.d: %v", err)
	}
	dir := t.TempDir()
	yaml := fmt.Sprintf("docker:\n  %q:\n    lookaside: %q\n    lookaside-staging: %q\n",
		scope, "file://"+abs, "file://"+abs)
	if err := os.WriteFile(filepath.Join(dir, "tally-test.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatalf("writing registries.d: %v", err)
	}
	return dir
}

// SkopeoCopy runs the real skopeo copy from src to dst (transport:reference,
// for example "docker://127.0.0.1:5000/stagex/core-foo:1.0" and "dir:/tmp/x")
// under the policy file policyPath and the registries.d directory
// registriesDir, without TLS verification on either side (the test registry
// is plain HTTP) and with the test's isolated HOME. It returns nil when skopeo
// accepted and copied the image, and otherwise an error holding skopeo's
// standard error, so a test can check both acceptance and refusal.
func SkopeoCopy(t testing.TB, policyPath, registriesDir, src, dst string) error {
	t.Helper()
	Require(t, "skopeo")
	_, err := RunErr(t, "", nil, "skopeo",
		"--policy", policyPath, "--registries.d", registriesDir,
		"copy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst)
	return err
}
