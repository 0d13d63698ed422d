package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrTLS means the TLS connection to a registry failed: most often a
// certificate that no trusted CA signed (a self-signed or private
// registry).
var ErrTLS = errors.New("TLS with the registry failed")

// TLSOptions says how to reach registries whose certificates the system
// does not trust, as containers' tools do.
type TLSOptions struct {
	// CertDir is a directory of certificates, as skopeo's and podman's
	// --cert-dir: *.crt files are CAs to trust, each *.cert with the *.key
	// of the same name a client certificate. A subdirectory named after a
	// registry (host or host:port, the /etc/containers/certs.d layout)
	// applies to that registry only.
	CertDir string
	// Insecure lists registries (host or host:port) reached without
	// verifying their certificate, and over plain HTTP when they do not
	// speak TLS, as --tls-verify=false does: for test registries only.
	Insecure []string
}

// IsInsecure reports whether a registry host (host or host:port) is among
// opts.Insecure.
func (opts TLSOptions) IsInsecure(host string) bool {
	for _, h := range opts.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
		if hh, _, err := net.SplitHostPort(host); err == nil && strings.EqualFold(h, hh) {
			return true
		}
	}
	return false
}

// NameOptions are the go-containerregistry name options for a reference to
// host: name.Insecure (plain HTTP allowed) for an insecure registry.
func (opts TLSOptions) NameOptions(host string) []name.Option {
	if opts.IsInsecure(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Transport returns an http.RoundTripper that trusts the system's CAs plus
// those in opts.CertDir, presents its client certificates, and skips
// verification for the insecure registries. With no options it returns
// remote.DefaultTransport.
func (opts TLSOptions) Transport() (http.RoundTripper, error) {
	if opts.CertDir == "" && len(opts.Insecure) == 0 {
		return remote.DefaultTransport, nil
	}
	base, err := opts.tlsConfig(opts.CertDir)
	if err != nil {
		return nil, err
	}
	t := &hostTransport{opts: opts, byHost: map[string]http.RoundTripper{}, base: newTransport(base)}
	if opts.CertDir != "" {
		entries, err := os.ReadDir(opts.CertDir)
		if err != nil {
			return nil, fmt.Errorf("reading --cert-dir: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			cfg, err := opts.tlsConfig(opts.CertDir, filepath.Join(opts.CertDir, e.Name()))
			if err != nil {
				return nil, err
			}
			t.byHost[strings.ToLower(e.Name())] = newTransport(cfg)
		}
	}
	insecure := base.Clone()
	insecure.InsecureSkipVerify = true //nolint:gosec // only for the registries named by --insecure-registry
	t.insecure = newTransport(insecure)
	return t, nil
}

func newTransport(cfg *tls.Config) http.RoundTripper {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return tr
}

// tlsConfig trusts the system pool plus the *.crt of dirs and loads the
// client certificates (*.cert + *.key) found there.
func (opts TLSOptions) tlsConfig(dirs ...string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading --cert-dir: %w", err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir():
			case strings.HasSuffix(e.Name(), ".crt"):
				data, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("reading --cert-dir: %w", err)
				}
				if !pool.AppendCertsFromPEM(data) {
					return nil, fmt.Errorf("reading --cert-dir: %s holds no PEM certificate", p)
				}
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, fmt.Errorf("reading --cert-dir: client certificate %s (with %s): %w", p, key, err)
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			}
		}
	}
	return cfg, nil
}

// hostTransport picks, per request, the transport for its registry host.
type hostTransport struct {
	opts     TLSOptions
	base     http.RoundTripper
	insecure http.RoundTripper
	byHost   map[string]http.RoundTripper
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := strings.ToLower(req.URL.Host)
	if t.opts.IsInsecure(host) {
		return t.insecure.RoundTrip(req)
	}
	if rt, ok := t.byHost[host]; ok {
		return rt.RoundTrip(req)
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		if rt, ok := t.byHost[h]; ok {
			return rt.RoundTrip(req)
		}
	}
	return t.base.RoundTrip(req)
}

// IsTLSError reports whether err is a failed TLS handshake or certificate
// check, the cause of ErrTLS.
func IsTLSError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record)
}
