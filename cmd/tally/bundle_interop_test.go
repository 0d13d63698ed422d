package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// TestInteropBundleSkopeoOffline: a consumer in an air gap has the bundle
// and a registry mirror, not the signatures repository. tally bundle
// extract lays out the lookaside, tally policy export --bundle writes the
// policy, and stock skopeo accepts the released image from the mirror with
// the signatures read from the file:// lookaside; it refuses once the
// lookaside lacks a maintainer's signature, and refuses an unsigned image.
func TestInteropBundleSkopeoOffline(t *testing.T) {
	interop.Require(t, "gpg", "skopeo", "docker-registry", "git")
	s := newSignedRepo(t, sample.Spec{Name: "core-hello", Tag: "1.0"}, sample.Spec{Name: "core-other", Tag: "9.0"})
	// Both images are released; core-other's layout is pushed below as
	// core-unsigned, a name nobody signed.
	mustTally(t, "release", "cut", "--repo", s.repo, "2026.11.0", "--key", filepath.Join(s.keys, "alice.sec.asc"))
	dir := t.TempDir()
	file := filepath.Join(dir, "r.bundle")
	mustTally(t, "bundle", "create", "--repo", s.repo, "--release", "2026.11.0", file)
	// The repository is gone: only the bundle travels.
	if err := os.RemoveAll(s.repo); err != nil {
		t.Fatal(err)
	}
	sigs := filepath.Join(dir, "sigs")
	mustTally(t, "bundle", "extract", file, sigs)

	reg := interop.StartRegistry(t)
	digest := s.digests["core-hello"][0]
	if got := skopeoPush(t, reg, s.out, "core-hello", "1.0", false); got != digest {
		t.Fatalf("skopeo pushed core-hello:1.0 as %s, tally signed %s", got, digest)
	}
	pol := filepath.Join(dir, "policy")
	mustTally(t, "policy", "export", "--bundle", file, "--release", "2026.11.0", "--registry", reg.Addr+"/stagex",
		"--lookaside", "file://"+sigs, "--out", pol)
	pull := func(ref string) error {
		_, err := interop.RunErr(t, "", nil, "skopeo", "--policy", filepath.Join(pol, "policy.json"),
			"--registries.d", filepath.Join(pol, "registries.d"),
			"copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+t.TempDir())
		return err
	}
	if err := pull(reg.Addr + "/stagex/core-hello:1.0"); err != nil {
		t.Fatalf("skopeo refused the released image with the bundle's lookaside: %v", err)
	}

	// An image nobody signed, in the same namespace: refused.
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	interop.Run(t, nil, "skopeo", "--policy", accept, "copy", "--dest-tls-verify=false",
		"oci:"+filepath.Join(s.out, "core-other")+":9.0", "docker://"+reg.Addr+"/stagex/core-unsigned:9.0")
	if err := pull(reg.Addr + "/stagex/core-unsigned:9.0"); err == nil {
		t.Error("skopeo accepted an unsigned image under the bundle's policy")
	}

	// Not vacuous: without bob's signature in the lookaside, refused.
	matches, err := filepath.Glob(filepath.Join(sigs, "stagex", "core-hello@"+strings.Replace(digest, ":", "=", 1), "signature-*"))
	if err != nil || len(matches) != 2 {
		t.Fatalf("the extracted lookaside holds %v (%v), want alice's and bob's signatures", matches, err)
	}
	if err := os.Remove(matches[1]); err != nil {
		t.Fatal(err)
	}
	err = pull(reg.Addr + "/stagex/core-hello:1.0")
	if err == nil {
		t.Fatal("skopeo accepted the image with one of the two signatures the policy demands")
	}
	if !strings.Contains(err.Error(), "Source image rejected") {
		t.Errorf("refused for another reason than the policy: %v", err)
	}
}
