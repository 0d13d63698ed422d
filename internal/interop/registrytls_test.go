package interop_test

import (
	"strings"
	"testing"

	"github.com/tally-sig/tally/internal/interop"
)

// TestRegistryTLS: stock skopeo pushes to the TLS registry with its CA
// (certs.d layout) and credentials (auth file), and fails without either.
func TestRegistryTLS(t *testing.T) {
	t.Parallel()
	interop.Require(t, "skopeo", "docker-registry")
	reg := interop.StartRegistryTLS(t)
	dir, _ := writeLayout(t, "1.0")
	accept := interop.WritePolicy(t, interop.Policy{Default: []interop.Requirement{interop.AcceptAnything()}})
	dst := "docker://" + reg.Addr + "/stagex/x:1.0"
	copyWith := func(extra ...string) error {
		args := append([]string{"--policy", accept, "copy"}, extra...)
		_, err := interop.RunErr(t, "", nil, "skopeo", append(args, "oci:"+dir+":1.0", dst)...)
		return err
	}
	if err := copyWith("--dest-cert-dir", reg.CertDir, "--dest-authfile", reg.AuthFile); err != nil {
		t.Fatalf("skopeo with the CA and the credentials: %v", err)
	}
	if err := copyWith("--dest-authfile", reg.AuthFile); err == nil || !strings.Contains(err.Error(), "x509") {
		t.Errorf("skopeo without the CA = %v, want a certificate error", err)
	}
	if err := copyWith("--dest-cert-dir", reg.CertDir); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("skopeo without credentials = %v, want authentication required", err)
	}
}
