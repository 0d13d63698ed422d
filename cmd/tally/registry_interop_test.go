package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
	"github.com/tally-sig/tally/release"
)

// TestInteropPublishSeveralRegistriesTLS: release publish --to A --to B
// publishes to a docker-registry with TLS (a test CA, given with
// --cert-dir) and htpasswd (credentials from REGISTRY_AUTH_FILE, as podman
// login leaves them) and to a plain one, each on its own; tally verify
// docker:// reads the TLS one back. Without the CA it fails with the TLS
// hint; without credentials, with the login hint; a registry that fails
// does not stop the other, and a rerun finishes.
func TestInteropPublishSeveralRegistriesTLS(t *testing.T) {
	// Not parallel: it runs tally in-process (newSignedRepo), and
	// urfave/cli's global flags are not safe for concurrent runs.
	interop.Require(t, "git", "tally", "docker-registry")
	s := newSignedRepo(t, sample.Spec{Name: "core-hello", Tag: "1.0"})
	mustTally(t, "release", "cut", "--repo", s.repo, "2026.11.0", "--key", filepath.Join(s.keys, "alice.sec.asc"))
	tlsReg := interop.StartRegistryTLS(t)
	plain := interop.StartRegistry(t)
	auth := []string{"REGISTRY_AUTH_FILE=" + tlsReg.AuthFile}
	publish := func(env []string, extra ...string) (string, string, int) {
		args := append([]string{"release", "publish", "--repo", s.repo, "2026.11.0", "--out", s.out, "--no-push",
			"--to", tlsReg.Addr + "/stagex", "--to", plain.Addr + "/stagex"}, extra...)
		return tallyProc(t, env, args...)
	}

	// No CA: the TLS registry fails with the hint, the plain one is
	// published all the same.
	stdout, stderr, code := publish(auth)
	if code != exitData {
		t.Errorf("publish without the CA: exit %d, want %d\n%s%s", code, exitData, stdout, stderr)
	}
	mustMatch(t, "publish without the CA", stderr, `(?m)^tally: error: .*TLS with the registry failed: .*x509`)
	mustMatch(t, "publish without the CA", stderr, `(?m)^tally: hint: the registry's certificate is not trusted: give its CA with --cert-dir DIR`)
	mustMatch(t, "publish without the CA", stdout, `(?m)^core-hello:1.0 -> `+plain.Addr+`/stagex/core-hello@sha256:[0-9a-f]{12} \(1 platform\(s\), uploaded;`)
	mustMatch(t, "publish without the CA", stdout, `(?m)^not every destination has the release: the signatures were not pushed`)

	// The CA, no credentials: the login hint.
	stdout, stderr, code = publish(nil, "--cert-dir", tlsReg.CertDir)
	if code != exitData {
		t.Errorf("publish without credentials: exit %d, want %d\n%s%s", code, exitData, stdout, stderr)
	}
	mustMatch(t, "publish without credentials", stderr, `(?m)^tally: hint: log in first`)

	// Both: the TLS registry gets the release, the plain one has it already.
	stdout, stderr = mustTallyProc(t, auth, "release", "publish", "--repo", s.repo, "2026.11.0", "--out", s.out, "--no-push",
		"--to", tlsReg.Addr+"/stagex", "--to", plain.Addr+"/stagex", "--cert-dir", tlsReg.CertDir, "--json")
	var results []release.PublishResult
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatalf("publish --json with two destinations: %v\n%s", err, stdout)
	}
	if len(results) != 2 || results[0].To != tlsReg.Addr+"/stagex" || results[1].To != plain.Addr+"/stagex" {
		t.Fatalf("publish --json results: %+v", results)
	}
	if !results[0].Images[0].Uploaded || results[1].Images[0].Uploaded {
		t.Errorf("uploaded: TLS registry %v (want true), plain %v (want false: it had the release)", results[0].Images[0].Uploaded, results[1].Images[0].Uploaded)
	}
	if strings.Contains(stderr, "warning: --to") {
		t.Errorf("a repeated --to was warned about: it takes several values\n%s", stderr)
	}

	// verify docker:// with the CA and the credentials; without the CA, the hint.
	ref := "docker://" + tlsReg.Addr + "/stagex/core-hello:1.0"
	stdout, _ = mustTallyProc(t, auth, "verify", "--repo", s.repo, "--cert-dir", tlsReg.CertDir, ref)
	if !strings.Contains(stdout, "core-hello") {
		t.Errorf("verify of the TLS registry's image:\n%s", stdout)
	}
	_, stderr, code = tallyProc(t, auth, "verify", "--repo", s.repo, ref)
	if code != exitData || !strings.Contains(stderr, "tally: hint: the registry's certificate is not trusted") {
		t.Errorf("verify without the CA: exit %d\n%s", code, stderr)
	}
	// --insecure-registry skips the check (for test registries).
	mustTallyProc(t, auth, "verify", "--repo", s.repo, "--insecure-registry", tlsReg.Addr, ref)
}
