package registry

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

func TestTLSOptionsTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	host := tlsTestHost(t, srv.URL)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	flat := t.TempDir()
	tlsTestWrite(t, filepath.Join(flat, "ca.crt"), caPEM)
	perHost := t.TempDir()
	tlsTestWrite(t, filepath.Join(perHost, host, "ca.crt"), caPEM)
	otherHost := t.TempDir()
	tlsTestWrite(t, filepath.Join(otherHost, "registry.example:5000", "ca.crt"), caPEM)

	get := func(opts TLSOptions) error {
		rt, err := opts.Transport()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, tt := range []struct {
		name string
		opts TLSOptions
		ok   bool
	}{
		{"system CAs only", TLSOptions{}, false},
		{"the CA in --cert-dir", TLSOptions{CertDir: flat}, true},
		{"the CA in the registry's certs.d directory", TLSOptions{CertDir: perHost}, true},
		{"a CA for another registry", TLSOptions{CertDir: otherHost}, false},
		{"insecure registry", TLSOptions{Insecure: []string{host}}, true},
		{"another registry insecure", TLSOptions{Insecure: []string{"registry.example"}}, false},
	} {
		err := get(tt.opts)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.ok && err == nil:
			t.Errorf("%s: the untrusted certificate was accepted", tt.name)
		case !tt.ok && !IsTLSError(err):
			t.Errorf("%s: %v is not recognised as a TLS error", tt.name, err)
		}
	}
	bad := t.TempDir()
	tlsTestWrite(t, filepath.Join(bad, "ca.crt"), []byte("not a certificate"))
	if _, err := (TLSOptions{CertDir: bad}).Transport(); err == nil {
		t.Error("a --cert-dir with a broken ca.crt was accepted")
	}
	if _, err := (TLSOptions{CertDir: filepath.Join(bad, "missing")}).Transport(); err == nil {
		t.Error("a missing --cert-dir was accepted")
	}
	if opts := (TLSOptions{Insecure: []string{"127.0.0.1"}}); !opts.IsInsecure("127.0.0.1:5000") || opts.IsInsecure("127.0.0.2:5000") {
		t.Error("IsInsecure: a host without port must cover its ports, and only that host")
	}
}

func tlsTestHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func tlsTestWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
