package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// GPGHome makes a new GNUPGHOME, imports armoredKeys (public or secret keys)
// into it with the real gpg, gives every imported key ultimate ownertrust and
// returns its path. Pass it to other helpers as "GNUPGHOME="+home.
//
// The directory lives directly under /tmp, not under t.TempDir: gpg-agent's
// socket path must stay under about 100 bytes. At cleanup the agent and any
// other gpg daemon of that home are stopped and the directory is removed.
func GPGHome(t testing.TB, armoredKeys ...[]byte) string {
	t.Helper()
	Require(t, "gpg", "gpg-agent", "gpgconf")
	home, err := os.MkdirTemp("/tmp", "gpg")
	if err != nil {
		t.Fatalf("making GNUPGHOME: %v", err)
	}
	t.Cleanup(func() {
		// Not Command: the test's context is already canceled here.
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		if out, err := kill.CombinedOutput(); err != nil {
			t.Errorf("stopping gpg-agent of %s: %v\n%s", home, err, out)
		}
		if err := os.RemoveAll(home); err != nil {
			t.Errorf("removing GNUPGHOME: %v", err)
		}
	})
	env := []string{"GNUPGHOME=" + home}
	for i, key := range armoredKeys {
		cmd := Command(t, "", env, "gpg", "--batch", "--no-tty", "--import")
		cmd.Stdin = bytes.NewReader(key)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("importing key %d into %s: %v\n%s", i, home, err, out)
		}
	}
	if len(armoredKeys) == 0 {
		return home
	}
	// Every key in the new home is one we imported: trust them all.
	list := Run(t, env, "gpg", "--batch", "--with-colons", "--fingerprint", "--list-keys")
	var trust strings.Builder
	for _, fpr := range primaryFingerprints(list) {
		fmt.Fprintf(&trust, "%s:6:\n", fpr)
	}
	cmd := Command(t, "", env, "gpg", "--batch", "--import-ownertrust")
	cmd.Stdin = strings.NewReader(trust.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("setting ownertrust in %s: %v\n%s", home, err, out)
	}
	return home
}

// primaryFingerprints returns the fingerprints of the primary keys in
// gpg --with-colons --fingerprint output: the fpr record after each pub.
func primaryFingerprints(colons string) []string {
	var fprs []string
	afterPub := false
	for _, line := range strings.Split(colons, "\n") {
		fields := strings.Split(line, ":")
		switch {
		case fields[0] == "pub":
			afterPub = true
		case fields[0] == "fpr" && afterPub && len(fields) > 9:
			fprs = append(fprs, fields[9])
			afterPub = false
		case fields[0] == "sub":
			afterPub = false
		}
	}
	return fprs
}
