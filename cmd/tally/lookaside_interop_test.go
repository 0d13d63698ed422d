package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-sig/tally/internal/interop"
	"github.com/tally-sig/tally/internal/sample"
)

// TestInteropServedLookaside: the server's post-receive exports the
// lookaside tree into a directory that a plain web server (python3 -m
// http.server) serves, and stock skopeo verifies through that http://
// lookaside: refused while one of the two required maintainers has
// signed, accepted after the next push brings the second signature,
// refused again once a served file is tampered with.
func TestInteropServedLookaside(t *testing.T) {
	t.Parallel()
	interop.Require(t, "git", "tally", "gpg", "skopeo", "docker-registry", "python3")
	keys := keyFiles(t)
	key := func(who string) string { return filepath.Join(keys, who+".sec.asc") }
	dir := t.TempDir()
	repo, out, served := filepath.Join(dir, "sigs"), filepath.Join(dir, "out"), filepath.Join(dir, "www", "sigs")
	server := filepath.Join(dir, "server.git")

	interop.Git(t, "", nil, "init", "-q", "--bare", server)
	mustTallyProc(t, nil, "hooks", "install", "--server", "--repo", server, "--lookaside", served)
	mustTallyProc(t, nil, "init", "--repo", repo, "--threshold", "2",
		"--key-file", filepath.Join(keys, "alice.pub.asc"), "--key-file", filepath.Join(keys, "bob.pub.asc"), "--key", key("alice"))
	digests, err := sample.Write(out, sample.Spec{Name: "core-hello", Tag: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	mustTallyProc(t, nil, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--key", key("alice"))
	push := func() string {
		cmd := interop.Command(t, repo, nil, "git", "push", "-q", server, "main")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git push: %v\n%s", err, b)
		}
		return string(b)
	}
	if got := push(); !strings.Contains(got, "remote: tally: lookaside: exported") {
		t.Fatalf("the push did not refresh the lookaside:\n%s", got)
	}

	addr := serveHTTP(t, filepath.Dir(served))
	reg := interop.StartRegistry(t)
	digest := digests["core-hello"][0]
	if got := skopeoPush(t, reg, out, "core-hello", "1.0", false); got != digest {
		t.Fatalf("skopeo pushed %s, tally signed %s", got, digest)
	}
	scope := reg.Addr + "/stagex"
	remap := &interop.Identity{Type: "remapIdentity", Prefix: scope, SignedPrefix: "docker.io/stagex"}
	policy := interop.WritePolicy(t, interop.DockerPolicy(scope,
		interop.SignedBy(filepath.Join(keys, "alice.pub.asc"), remap),
		interop.SignedBy(filepath.Join(keys, "bob.pub.asc"), remap)))
	regd := t.TempDir()
	yaml := fmt.Sprintf("docker:\n  %q:\n    lookaside: %q\n", scope, "http://"+addr+"/sigs")
	if err := os.WriteFile(filepath.Join(regd, "tally.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	pull := func() error {
		return interop.SkopeoCopy(t, policy, regd, "docker://"+reg.Addr+"/stagex/core-hello:1.0", "dir:"+t.TempDir())
	}

	if err := pull(); err == nil {
		t.Fatal("skopeo accepted the image with only alice's signature served")
	}
	mustTallyProc(t, nil, "sign", "--repo", repo, "--release", "2026.11.0", "--out", out, "--key", key("bob"))
	if got := push(); !strings.Contains(got, "(2 signature(s))") {
		t.Fatalf("the second push did not export bob's signature:\n%s", got)
	}
	if err := pull(); err != nil {
		t.Fatalf("skopeo refused the image both maintainers signed, served over http: %v", err)
	}

	// The README's consumer commands, as pasted on Debian bookworm (skopeo
	// 1.9.3): into dir:, and into oci: with --remove-signatures (its OCI
	// transport cannot store signatures), both verified first.
	src := "docker://" + reg.Addr + "/stagex/core-hello:1.0"
	for _, args := range [][]string{
		{"copy", "--src-tls-verify=false", src, "dir:" + filepath.Join(t.TempDir(), "hello")},
		{"copy", "--src-tls-verify=false", "--remove-signatures", src, "oci:" + filepath.Join(t.TempDir(), "hello") + ":1.0"},
	} {
		if _, err := interop.RunErr(t, "", nil, "skopeo", append([]string{"--policy", policy, "--registries.d", regd}, args...)...); err != nil {
			t.Errorf("skopeo %s: %v", strings.Join(args, " "), err)
		}
	}

	// podman 4.3 (bookworm) as README shows it: registries.d in the user's
	// ~/.config/containers, the policy by --signature-policy.
	podmanPull := podmanPuller(t, regd, policy, reg.Addr+"/stagex/core-hello:1.0")
	if err := podmanPull(); err != nil {
		t.Errorf("podman refused the image both maintainers signed: %v", err)
	}

	// Tampered: bob's served signature replaced by alice's.
	sigDir := filepath.Join(served, "stagex", "core-hello@sha256="+strings.TrimPrefix(digest, "sha256:"))
	alices, err := os.ReadFile(filepath.Join(sigDir, "signature-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sigDir, "signature-2"), alices, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pull(); err == nil {
		t.Fatal("skopeo accepted the image after bob's served signature was replaced")
	}
	if err := podmanPull(); err == nil || !strings.Contains(err.Error(), "ignature") {
		t.Errorf("podman after bob's served signature was replaced: %v, want a refusal naming the signatures", err)
	}
	// --remove-signatures does not skip the verification.
	if _, err := interop.RunErr(t, "", nil, "skopeo", "--policy", policy, "--registries.d", regd, "copy", "--src-tls-verify=false",
		"--remove-signatures", src, "oci:"+filepath.Join(t.TempDir(), "hello")+":1.0"); err == nil {
		t.Error("skopeo copy --remove-signatures accepted the tampered image")
	}
	// An export of the same commit writes nothing, and the tree stays
	// tampered; --force rewrites it.
	mustTallyProc(t, nil, "lookaside", "export", "--repo", server, served)
	if err := pull(); err == nil {
		t.Fatal("an export of the commit already there rewrote the tree")
	}
	mustTallyProc(t, nil, "lookaside", "export", "--repo", server, "--force", served)
	if err := pull(); err != nil {
		t.Fatalf("skopeo refused the image after the tree was exported again: %v", err)
	}
}

// serveHTTP serves dir with python3 -m http.server on a free loopback port
// until the test ends, and returns host:port.
func serveHTTP(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(t.Context(), "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, port)
	cmd.Env = interop.Env(t)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("python3 http.server not ready: %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// podmanPuller returns a function that pulls ref with stock podman into a
// fresh store (vfs, so no kernel features are needed) under policy, with
// the registries.d files of regd in an isolated HOME's
// ~/.config/containers/registries.d, where README tells consumers to put
// them.
func podmanPuller(t *testing.T, regd, policy, ref string) func() error {
	t.Helper()
	interop.Require(t, "podman")
	home := t.TempDir()
	userRegd := filepath.Join(home, ".config", "containers", "registries.d")
	if err := os.MkdirAll(userRegd, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(regd)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(regd, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(userRegd, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No system registries.conf or storage.conf: only what the test says.
	if err := os.WriteFile(filepath.Join(home, "registries.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(home, "registries.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(home, "storage.conf")}
	n := 0
	return func() error {
		n++
		// A fresh store each time: nothing pulled before can help.
		store := filepath.Join(home, fmt.Sprintf("store-%d", n))
		conf := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(store, "run"), filepath.Join(store, "root"))
		if err := os.WriteFile(filepath.Join(home, "storage.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := interop.RunErr(t, "", append(env, "XDG_RUNTIME_DIR="+filepath.Join(store, "xdg")), "podman",
			"--cgroup-manager", "cgroupfs", "--events-backend", "none",
			"pull", "--quiet", "--tls-verify=false", "--signature-policy", policy, ref)
		return err
	}
}
