package interop

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// GitServer serves the bare repositories under Root to git clients on
// loopback, as a forge does: over ssh ([StartSSHD]) or smart HTTP with basic
// authentication ([StartGitHTTP]). Clients reach Root/NAME at URL(NAME)
// with the environment Env.
type GitServer struct {
	// Root holds the served bare repositories.
	Root string
	// Env is what a client needs in its environment to reach the server:
	// for ssh, GIT_SSH_COMMAND naming the key and the known host, and no
	// agent; for HTTP, a HOME whose git configuration has a
	// credential.helper store with the password.
	Env []string

	url func(name string) string
}

// URL returns the URL of the repository Root/name.
func (s *GitServer) URL(name string) string { return s.url(name) }

// sbinLookPath finds a daemon on PATH or in the sbin directories, which a
// non-root PATH often lacks.
func sbinLookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("INTEROP SKIPPED: %s not installed; CI installs it (.ci/run)", name)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, but CI is set: interop tests must run in CI", msg)
	}
	t.Skip(msg)
	return ""
}

// daemon starts cmd in its own process group, stops the group at cleanup
// and shows log when the test failed.
func daemon(t testing.TB, what string, cmd *exec.Cmd, log *lockedBuffer) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Stdout == nil {
		cmd.Stdout = log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = log
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() && log.String() != "" {
			t.Logf("%s logged:\n%s", what, log.String())
		}
	})
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t testing.TB, what, addr string, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s not ready: %v\n%s", what, addr, err, log.String())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// StartSSHD starts OpenSSH's sshd on a free loopback port with its own
// configuration and host key. It lets the current user in with one key
// that it generates, named only in the client's GIT_SSH_COMMAND (no agent,
// no ~/.ssh), with the host key pinned in a known_hosts file. git on the
// server side runs with sshd's default PATH. sshd needs /run/sshd, which
// it makes (as root in CI).
func StartSSHD(t testing.TB) *GitServer {
	t.Helper()
	Require(t, "ssh", "ssh-keygen", "git")
	sshd := sbinLookPath(t, "sshd")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs its privilege separation directory /run/sshd: %v", err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "srv")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"host", "client"} {
		Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tally-test-"+k, "-f", filepath.Join(dir, k))
	}
	clientPub, err := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), clientPub, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	config := fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers %s
LogLevel VERBOSE
`, addr, filepath.Join(dir, "host"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"), me.Username)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host.pub"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(hostPub))
	known := fmt.Sprintf("[%s]:%s %s %s\n", host, port, fields[0], fields[1])
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known), 0o600); err != nil {
		t.Fatal(err)
	}
	log := new(lockedBuffer)
	// -D: stay in the foreground; -e: log to standard error.
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	daemon(t, "sshd", cmd, log)
	waitListening(t, "sshd", addr, log)

	sshCmd := fmt.Sprintf("ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes",
		filepath.Join(dir, "client"), filepath.Join(dir, "known_hosts"))
	return &GitServer{
		Root: root,
		Env:  []string{"GIT_SSH_COMMAND=" + sshCmd, "SSH_AUTH_SOCK="},
		url: func(name string) string {
			return fmt.Sprintf("ssh://%s@%s:%s%s", me.Username, host, port, filepath.Join(root, name))
		},
	}
}

// GitHTTPUser and GitHTTPPassword are the basic-auth credentials
// [StartGitHTTP] accepts.
const (
	GitHTTPUser     = "maintainer"
	GitHTTPPassword = "not-a-secret-7f3a"
)

// StartGitHTTP starts nginx on a free loopback port serving Root's
// repositories through fcgiwrap and git's git-http-backend (smart HTTP,
// pushes allowed to an authenticated user), behind basic authentication.
// Env gives the client a HOME whose ~/.gitconfig sets credential.helper
// store and whose ~/.git-credentials holds the password, so git finds it
// as it would a forge token; the URLs carry no credentials.
func StartGitHTTP(t testing.TB) *GitServer {
	t.Helper()
	Require(t, "git")
	nginx := sbinLookPath(t, "nginx")
	fcgiwrap := sbinLookPath(t, "fcgiwrap")
	backend := strings.TrimSpace(Run(t, nil, "git", "--exec-path")) + "/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git-http-backend: %v", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "srv")
	for _, d := range []string{root, filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// nginx reads {PLAIN} passwords from its user file.
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(GitHTTPUser+":{PLAIN}"+GitHTTPPassword+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fcgiwrap.sock")
	flog := new(lockedBuffer)
	fcmd := exec.Command(fcgiwrap, "-c", "2", "-s", "unix:"+sock)
	fcmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	daemon(t, "fcgiwrap", fcmd, flog)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fcgiwrap did not create %s\n%s", sock, flog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	addr := freeLoopbackAddr(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	userLine := ""
	if me.Uid == "0" {
		userLine = "user root;"
	}
	tmp := filepath.Join(dir, "tmp")
	config := fmt.Sprintf(`daemon off;
master_process off;
%s
pid %s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %s/body;
	proxy_temp_path %s/proxy;
	fastcgi_temp_path %s/fastcgi;
	uwsgi_temp_path %s/uwsgi;
	scgi_temp_path %s/scgi;
	client_max_body_size 0;
	server {
		listen %s;
		location / {
			auth_basic "signatures";
			auth_basic_user_file %s/htpasswd;
			fastcgi_pass unix:%s;
			fastcgi_param SCRIPT_FILENAME %s;
			fastcgi_param GIT_PROJECT_ROOT %s;
			fastcgi_param GIT_HTTP_EXPORT_ALL "";
			fastcgi_param PATH_INFO $uri;
			fastcgi_param REMOTE_USER $remote_user;
			fastcgi_param REMOTE_ADDR $remote_addr;
			fastcgi_param QUERY_STRING $query_string;
			fastcgi_param REQUEST_METHOD $request_method;
			fastcgi_param CONTENT_TYPE $content_type;
			fastcgi_param CONTENT_LENGTH $content_length;
			fastcgi_param HTTP_GIT_PROTOCOL $http_git_protocol;
			fastcgi_param PATH %q;
			fastcgi_param HOME %s;
			fastcgi_param GIT_CONFIG_NOSYSTEM 1;
		}
	}
}
`, userLine, dir, tmp, tmp, tmp, tmp, tmp, addr, dir, sock, backend, root, os.Getenv("PATH"), dir)
	cfgPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	nlog := new(lockedBuffer)
	ncmd := exec.Command(nginx, "-p", dir, "-c", cfgPath, "-e", "stderr")
	ncmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	daemon(t, "nginx", ncmd, nlog)
	waitListening(t, "nginx", addr, nlog)
	// Unauthenticated requests are refused: the credentials matter.
	resp, err := http.Get("http://" + addr + "/x.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatalf("nginx: %v\n%s", err, nlog.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("nginx without credentials: %s, want 401", resp.Status)
	}

	home := filepath.Join(dir, "client-home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[credential]\n\thelper = store\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cred := fmt.Sprintf("http://%s:%s@%s\n", GitHTTPUser, GitHTTPPassword, addr)
	if err := os.WriteFile(filepath.Join(home, ".git-credentials"), []byte(cred), 0o600); err != nil {
		t.Fatal(err)
	}
	return &GitServer{
		Root: root,
		Env:  []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home + "/.config"},
		url:  func(name string) string { return "http://" + addr + "/" + name },
	}
}
