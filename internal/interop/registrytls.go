package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// registryTLSConfig adds TLS and htpasswd authentication to registryConfig.
const registryTLSConfig = `  tls:
    certificate: %q
    key: %q
auth:
  htpasswd:
    realm: tally-interop
    path: %q
`

// StartRegistryTLS starts a docker-registry like [StartRegistry] that serves
// HTTPS with a certificate for 127.0.0.1 signed by a throwaway test CA, and
// requires basic authentication (htpasswd, bcrypt) for every request. The
// returned Registry's CAFile, CertDir, User, Password and AuthFile are what
// a client needs; without them it fails the TLS handshake or gets 401.
func StartRegistryTLS(t testing.TB) *Registry {
	t.Helper()
	Require(t, "docker-registry")
	dir := t.TempDir()
	r := &Registry{
		Addr:     freeLoopbackAddr(t),
		Root:     filepath.Join(dir, "storage"),
		t:        t,
		config:   filepath.Join(dir, "config.yml"),
		User:     "publisher",
		Password: "not-a-secret-registry-9c1d",
	}
	caPEM, certPEM, keyPEM := testCertificates(t)
	r.CAFile = filepath.Join(dir, "ca.crt")
	r.CertDir = filepath.Join(dir, "certs")
	r.CertsD = filepath.Join(dir, "certs.d")
	cert, key, htpasswd := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "htpasswd")
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	r.AuthFile = filepath.Join(dir, "auth.json")
	for path, data := range map[string][]byte{
		r.CAFile: caPEM, cert: certPEM, key: keyPEM,
		filepath.Join(r.CertDir, "ca.crt"):        caPEM,
		filepath.Join(r.CertsD, r.Addr, "ca.crt"): caPEM,
		htpasswd:   append([]byte(r.User+":"), append(hash, '\n')...),
		r.AuthFile: fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`+"\n", r.Addr, auth),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.serve([]byte(fmt.Sprintf(registryConfig, r.Root, r.Addr) + fmt.Sprintf(registryTLSConfig, cert, key, htpasswd)))
	return r
}

// client is an HTTP client that trusts the registry's test CA, if any.
func (r *Registry) client() *http.Client {
	c := &http.Client{Timeout: time.Second}
	if r.CAFile != "" {
		pool := x509.NewCertPool()
		if data, err := os.ReadFile(r.CAFile); err == nil {
			pool.AppendCertsFromPEM(data)
		}
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return c
}

// get asks for /v2/ as an authenticated client would.
func (r *Registry) get(c *http.Client) (*http.Response, error) {
	scheme := "http"
	if r.CAFile != "" {
		scheme = "https"
	}
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+r.Addr+"/v2/", nil)
	if err != nil {
		return nil, err
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Password)
	}
	return c.Do(req)
}

// testCertificates makes a throwaway CA and a server certificate for
// 127.0.0.1 and ::1 signed by it, valid for a day, all PEM-encoded.
func testCertificates(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tally interop test CA (not trusted anywhere)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
