package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// TestInteropPolicyTagsAndMirrors: tally policy export --any-tag lets stock
// skopeo and podman pull the released image by :<version>, :sx<release>,
// :latest and digest, and still refuses an unsigned image under the same
// repository; without --any-tag only :<version> and digest pass. Both in the
// remap setup (pulled from the test registry, signed as docker.io/stagex)
// and the direct one (pulled as docker.io/stagex through a registries.conf
// mirror, which --mirror makes registries.d cover).
func TestInteropPolicyTagsAndMirrors(t *testing.T) {
	// Not parallel: it runs tally in-process (newSignedRepo), and
	// urfave/cli's global flags are not safe for concurrent runs.
	interop.Require(t, "git", "tally", "gpg", "skopeo", "docker-registry")
	s := newSignedRepo(t, sample.Spec{Name: "core-hello", Tag: "1.0"})
	mustTally(t, "release", "cut", "--repo", s.repo, "2026.11.0", "--key", filepath.Join(s.keys, "alice.sec.asc"))
	reg := interop.StartRegistry(t)
	mustTally(t, "release", "publish", "--repo", s.repo, "2026.11.0", "--out", s.out, "--no-push", "--to", reg.Addr+"/stagex")
	digest := s.digests["core-hello"][0]
	// An image nobody signed, under the released repository.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := sample.Write(other, sample.Spec{Name: "core-hello", Tag: "evil", Seed: "not released"}); err != nil {
		t.Fatal(err)
	}
	skopeoPush(t, reg, other, "core-hello", "evil", false)

	export := func(args ...string) (policyFile, regd string) {
		out := t.TempDir()
		mustTally(t, append([]string{"policy", "export", "--repo", s.repo, "--release", "2026.11.0",
			"--lookaside", "file://" + s.repo, "--out", out}, args...)...)
		return filepath.Join(out, "policy.json"), filepath.Join(out, "registries.d")
	}
	pull := func(policyFile, regd, ref string, extra ...string) error {
		args := append([]string{"--policy", policyFile, "--registries.d", regd}, extra...)
		args = append(args, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+t.TempDir())
		_, err := interop.RunErr(t, "", nil, "skopeo", args...)
		return err
	}
	tags := []string{":1.0", ":sx2026.11.0", ":latest", "@" + digest}

	t.Run("remap", func(t *testing.T) {
		base := reg.Addr + "/stagex/core-hello"
		p, d := export("--registry", reg.Addr+"/stagex")
		for _, tag := range tags {
			err := pull(p, d, base+tag)
			pinned := tag == ":1.0" || tag[0] == '@'
			if pinned && err != nil {
				t.Errorf("without --any-tag, %s refused: %v", tag, err)
			}
			if !pinned && err == nil {
				t.Errorf("without --any-tag, %s passed", tag)
			}
		}
		p, d = export("--registry", reg.Addr+"/stagex", "--any-tag")
		for _, tag := range tags {
			if err := pull(p, d, base+tag); err != nil {
				t.Errorf("with --any-tag, %s refused: %v", tag, err)
			}
		}
		if err := pull(p, d, base+":evil"); err == nil {
			t.Error("with --any-tag, the unsigned image passed")
		}
		if _, err := exec.LookPath("podman"); err == nil || os.Getenv("CI") != "" {
			podman := podmanPuller(t, d, p, base+":latest")
			if err := podman(); err != nil {
				t.Errorf("podman with --any-tag refused :latest: %v", err)
			}
			if err := podmanPuller(t, d, p, base+":evil")(); err == nil {
				t.Error("podman with --any-tag accepted the unsigned image")
			}
		}
	})

	t.Run("mirror", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "registries.conf")
		mirror := fmt.Sprintf("[[registry]]\nprefix = \"docker.io/stagex\"\nlocation = \"docker.io/stagex\"\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", reg.Addr+"/stagex")
		if err := os.WriteFile(conf, []byte(mirror), 0o644); err != nil {
			t.Fatal(err)
		}
		withConf := []string{"--registries-conf", conf}
		p, d := export("--registry", "docker.io/stagex", "--any-tag")
		if err := pull(p, d, "docker.io/stagex/core-hello:latest", withConf...); err == nil {
			t.Error("through the mirror without --mirror, the image passed (no signatures should be found)")
		}
		p, d = export("--registry", "docker.io/stagex", "--any-tag", "--mirror", reg.Addr+"/stagex")
		for _, tag := range tags {
			if err := pull(p, d, "docker.io/stagex/core-hello"+tag, withConf...); err != nil {
				t.Errorf("through the mirror with --mirror, %s refused: %v", tag, err)
			}
		}
		if err := pull(p, d, "docker.io/stagex/core-hello:evil", withConf...); err == nil {
			t.Error("through the mirror, the unsigned image passed")
		}
	})
}
