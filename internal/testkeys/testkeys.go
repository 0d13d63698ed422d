// Package testkeys embeds the throwaway OpenPGP keys that tally's tests and
// demo use. The keys are published on purpose and must never be trusted for
// anything real; see keys/README.md.
package testkeys

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed keys/*.asc keys/fingerprints.txt
var files embed.FS

// Passphrase protects the secret key of "paula"; the other keys have none.
const Passphrase = "tally-test-passphrase"

// Names lists every fixture key, in a fixed order.
var Names = []string{"alice", "bob", "carol", "mallory", "dave", "paula"}

// Public returns the armored public key of the named fixture.
func Public(name string) []byte { return mustRead("keys/" + name + ".pub.asc") }

// Secret returns the armored secret key of the named fixture.
func Secret(name string) []byte { return mustRead("keys/" + name + ".sec.asc") }

// Fingerprint returns the uppercase primary-key fingerprint of the named fixture.
func Fingerprint(name string) string {
	for _, line := range strings.Split(string(mustRead("keys/fingerprints.txt")), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	panic(fmt.Sprintf("testkeys: no fixture key %q", name))
}

func mustRead(path string) []byte {
	b, err := files.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("testkeys: %v", err))
	}
	return b
}
