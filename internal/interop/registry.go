package interop

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Registry is a real docker-registry (distribution 2.8) serving plain HTTP
// on loopback, with its storage in a temporary directory. Clients need
// --tls-verify=false (skopeo, podman) or name.Insecure (go-containerregistry).
// A Registry is not safe for concurrent use.
type Registry struct {
	// Addr is host:port, always 127.0.0.1:<port>, also while stopped.
	Addr string
	// Root is the filesystem storage directory; it survives Stop and Start.
	Root string

	// With StartRegistryTLS: the registry serves HTTPS with a certificate
	// of a test CA and asks for basic authentication.
	//
	// CAFile is the test CA's certificate (PEM). CertDir holds it as
	// ca.crt, for skopeo --cert-dir (and tally's); CertsD holds it in the
	// /etc/containers/certs.d layout, CertsD/<Addr>/ca.crt. User and Password are the one
	// account; AuthFile is a containers auth.json (REGISTRY_AUTH_FILE, or
	// a docker config.json: the format is the same) holding them.
	CAFile, CertDir, CertsD, User, Password, AuthFile string

	t      testing.TB
	config string
	cmd    *exec.Cmd
	log    *lockedBuffer
	done   chan struct{}
}

// registryConfig is the registry's configuration: storage on the
// filesystem with deletes allowed, loopback only, warnings only.
const registryConfig = `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: %q
  secret: tally-interop-test
`

// registryStartTimeout bounds how long Start waits for GET /v2/ to answer.
const registryStartTimeout = 30 * time.Second

// StartRegistry starts a docker-registry on a free loopback port, waits until
// GET /v2/ answers and returns it. It is stopped at cleanup, and its log is
// shown when the test failed.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	Require(t, "docker-registry")
	dir := t.TempDir()
	r := &Registry{
		Addr:   freeLoopbackAddr(t),
		Root:   filepath.Join(dir, "storage"),
		t:      t,
		config: filepath.Join(dir, "config.yml"),
	}
	r.serve(fmt.Appendf(nil, registryConfig, r.Root, r.Addr))
	return r
}

// serve writes the registry's configuration, starts it, and stops it at the
// test's cleanup, showing its log when the test failed.
func (r *Registry) serve(config []byte) {
	t := r.t
	t.Helper()
	if err := os.WriteFile(r.config, config, 0o644); err != nil {
		t.Fatalf("writing registry config: %v", err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() && r.Log() != "" {
			t.Logf("docker-registry on %s logged:\n%s", r.Addr, r.Log())
		}
	})
	r.Start()
}

// Start starts the registry again after Stop, on the same address and with
// the same storage, and waits until it answers. It does nothing while the
// registry runs.
func (r *Registry) Start() {
	r.t.Helper()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command("docker-registry", "serve", r.config)
	// A clean environment: REGISTRY_* variables would override the config.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(r.config)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.log = new(lockedBuffer)
	cmd.Stdout = r.log
	cmd.Stderr = r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting docker-registry: %v", err)
	}
	r.cmd = cmd
	r.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)

	deadline := time.Now().Add(registryStartTimeout)
	client := r.client()
	for {
		select {
		case <-r.done:
			r.cmd = nil
			r.t.Fatalf("docker-registry exited at start: %v\n%s", cmd.ProcessState, r.log)
		default:
		}
		resp, err := r.get(client)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			r.Stop()
			r.t.Fatalf("docker-registry on %s not ready after %v: %v\n%s", r.Addr, registryStartTimeout, err, r.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the registry (its whole process group) and waits for it to
// exit; the storage stays. Stop does nothing while the registry is stopped.
func (r *Registry) Stop() {
	if r.cmd == nil {
		return
	}
	pgid := r.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
}

// Log returns what the registry printed since it was last started.
// Only warnings and errors are logged.
func (r *Registry) Log() string {
	if r.log == nil {
		return ""
	}
	return r.log.String()
}

// lockedBuffer is a bytes.Buffer that the registry's output can be written
// to while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeLoopbackAddr returns 127.0.0.1:<port> for a port that was free a
// moment ago.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
