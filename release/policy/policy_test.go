package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []Policy{
		{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2, Keyring: "stagex-keyring.pgp"},
		{Namespace: "acme/base", IdentityPrefix: "registry.example.org:5000/acme/base", Threshold: 1, Keyring: "keys.pgp"},
	} {
		got, err := ParsePolicy(p.Marshal())
		if err != nil {
			t.Fatalf("ParsePolicy(Marshal(%+v)): %v", p, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestParsePolicyDefaultsPrefix(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy([]byte("namespace = \"stagex\"\nthreshold = 1\nkeyring = \"k.pgp\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.IdentityPrefix != "stagex" || p.Reference("core-gcc", "14.2.0") != "stagex/core-gcc:14.2.0" {
		t.Errorf("identity prefix %q, reference %q", p.IdentityPrefix, p.Reference("core-gcc", "14.2.0"))
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ toml, want string }{
		"unknown key":       {"namespace = \"s\"\nthreshold = 1\nkeyring = \"k\"\nquorum = 3\n", `unknown key "quorum"`},
		"missing threshold": {"namespace = \"s\"\nkeyring = \"k\"\n", `missing "threshold"`},
		"missing keyring":   {"namespace = \"s\"\nthreshold = 1\n", `missing "keyring"`},
		"threshold zero":    {"namespace = \"s\"\nthreshold = 0\nkeyring = \"k\"\n", "at least 1"},
		"threshold minus":   {"namespace = \"s\"\nthreshold = -2\nkeyring = \"k\"\n", "at least 1"},
		"uppercase ns":      {"namespace = \"StageX\"\nthreshold = 1\nkeyring = \"k\"\n", "not a repository path"},
		"dotdot ns":         {"namespace = \"../x\"\nthreshold = 1\nkeyring = \"k\"\n", "not a repository path"},
		"reserved ns":       {"namespace = \"builds\"\nthreshold = 1\nkeyring = \"k\"\n", "reserved"},
		"keyring in dir":    {"namespace = \"s\"\nthreshold = 1\nkeyring = \"a/k\"\n", "plain file name"},
		"keyring escapes":   {"namespace = \"s\"\nthreshold = 1\nkeyring = \"../k\"\n", "plain file name"},
		"keyring policy":    {"namespace = \"s\"\nthreshold = 1\nkeyring = \"tally.toml\"\n", "plain file name"},
		"wrong type":        {"namespace = 3\nthreshold = 1\nkeyring = \"k\"\n", "tally.toml"},
		"not toml":          {"{", "tally.toml"},
		"bad prefix":        {"namespace = \"s\"\nidentity_prefix = \"a b\"\nthreshold = 1\nkeyring = \"k\"\n", "identity_prefix"},
		"too large":         {"# " + strings.Repeat("x", MaxPolicySize) + "\nnamespace = \"s\"\nthreshold = 1\nkeyring = \"k\"\n", "more than the 65536 a trust policy may have"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePolicy([]byte(tc.toml))
			if !errors.Is(err, ErrBadPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePolicy: %v; want ErrBadPolicy mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCheckThreshold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m, n int
		ok   bool
	}{{1, 1, true}, {2, 3, true}, {3, 3, true}, {0, 3, false}, {-1, 3, false}, {4, 3, false}, {1, 0, false}} {
		if err := CheckThreshold(tc.m, tc.n); (err == nil) != tc.ok {
			t.Errorf("CheckThreshold(%d, %d) = %v, want ok=%v", tc.m, tc.n, err, tc.ok)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("namespace = \"stagex\"\nthreshold = 2\nkeyring = \"stagex-keyring.pgp\"\n"))
	f.Add([]byte("namespace = \"a/b\"\nidentity_prefix = \"h:1/a/b\"\nthreshold = 1\nkeyring = \"k\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		// Whatever is accepted is valid and survives a round trip unchanged.
		if p.Threshold < 1 || p.Namespace == "" || p.Keyring == "" {
			t.Fatalf("accepted an invalid policy %+v", p)
		}
		again, err := ParsePolicy(p.Marshal())
		if err != nil {
			t.Fatalf("re-parsing the marshalled policy: %v", err)
		}
		if again != p {
			t.Fatalf("round trip changed %+v to %+v", p, again)
		}
	})
}
