package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/release/policy"
)

const stagexMaintainers = `# StageX maintainers: [keys.<person>.<label>]
[keys.alice.primary]
id = "e0106e9228eb09351f6734c7ed8e3c9aef5811b1"

[keys.bob.sig]
id = "3C2D 7F3E 13D5 56A4 ED2D  1F27 3C46 0B65 C5F6 7C4A"
comment = "a field tally ignores"

[people.alice]
name = "Alice"
`

func TestParseMaintainers(t *testing.T) {
	got, err := policy.ParseMaintainers([]byte(stagexMaintainers))
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Maintainer{
		{Person: "bob", Label: "sig", Fingerprint: "3C2D7F3E13D556A4ED2D1F273C460B65C5F67C4A"},
		{Person: "alice", Label: "primary", Fingerprint: "E0106E9228EB09351F6734C7ED8E3C9AEF5811B1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseMaintainersRefuses(t *testing.T) {
	fpr := "E0106E9228EB09351F6734C7ED8E3C9AEF5811B1"
	for _, tc := range []struct{ name, data, want string }{
		{"not toml", "[keys", "invalid MAINTAINERS file"},
		{"no keys", "[people.alice]\nname = \"A\"\n", "no [keys.<person>.<label>] table with an id"},
		{"no id", "[keys.alice.primary]\nfpr = \"" + fpr + "\"\n", "[keys.alice.primary] has no id"},
		{"id not a string", "[keys.alice.primary]\nid = 5\n", "id is not a string"},
		{"short id", "[keys.alice.primary]\nid = \"ED8E3C9AEF5811B1\"\n", `id "ED8E3C9AEF5811B1" is not a primary-key fingerprint`},
		{"not hex", "[keys.alice.primary]\nid = \"" + strings.Repeat("Z", 40) + "\"\n", "is not a primary-key fingerprint"},
		{"twice", "[keys.alice.a]\nid = \"" + fpr + "\"\n[keys.bob.b]\nid = \"" + strings.ToLower(fpr) + "\"\n",
			fpr + " is listed twice ([keys.alice.a] and [keys.bob.b])"},
		{"keys not tables", "keys = 1\n", "invalid MAINTAINERS file"},
		{"too large", strings.Repeat("#", policy.MaxMaintainersSize+1), "more than the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.ParseMaintainers([]byte(tc.data))
			if err == nil || !errors.Is(err, policy.ErrBadMaintainers) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrBadMaintainers with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseMaintainers checks the properties of what ParseMaintainers
// accepts: at least one key, every fingerprint 40 or 64 uppercase hex
// digits, none twice, sorted; and the same input gives the same result.
func FuzzParseMaintainers(f *testing.F) {
	f.Add([]byte(stagexMaintainers))
	f.Add([]byte("[keys.a.b]\nid = \"\"\n"))
	f.Add([]byte("[keys]\na = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := policy.ParseMaintainers(data)
		if err != nil {
			if !errors.Is(err, policy.ErrBadMaintainers) {
				t.Fatalf("error without ErrBadMaintainers: %v", err)
			}
			return
		}
		if len(ms) == 0 {
			t.Fatal("accepted with no keys")
		}
		for i, m := range ms {
			if n := len(m.Fingerprint); n != 40 && n != 64 || strings.Trim(m.Fingerprint, "0123456789ABCDEF") != "" {
				t.Fatalf("fingerprint %q", m.Fingerprint)
			}
			if i > 0 && ms[i-1].Fingerprint >= m.Fingerprint {
				t.Fatalf("not sorted or twice: %q then %q", ms[i-1].Fingerprint, m.Fingerprint)
			}
		}
		again, err := policy.ParseMaintainers(data)
		if err != nil || !cmp.Equal(ms, again) {
			t.Fatalf("not deterministic: %v", err)
		}
	})
}
