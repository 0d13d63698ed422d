package record

import (
	"strings"
	"testing"
)

// The hand-written checks in the build-record parser must accept exactly
// what the regexps they replace accept.

var tokenSeeds = []string{
	"", "a", "Z", "0", "linux/amd64", "1.2.3", "v1.0+build", "a:b", "a-b_c.d",
	".a", "-a", "_a", "+a", "/a", ":a", "a b", "a\tb", "a\n", "a\x00", "é", "aé",
	"a=b", `a"b`, "a,b", "a@b", "a~b",
}

func TestIsTokenMatchesRegexp(t *testing.T) {
	t.Parallel()
	for _, s := range tokenSeeds {
		if got, want := isToken(s), tokenPattern.MatchString(s); got != want {
			t.Errorf("isToken(%q) = %v, the regexp says %v", s, got, want)
		}
	}
}

func FuzzIsToken(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isToken(s), tokenPattern.MatchString(s); got != want {
			t.Errorf("isToken(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}

var digestSeeds = func() []string {
	h := strings.Repeat("0123456789abcdef", 4)
	return []string{
		"", "sha256:", "sha256:" + h, "sha256:" + h + "0", "sha256:" + h[1:],
		"sha256:" + h[1:] + "A", "sha256:" + h[1:] + "g", "sha512:" + h,
		"sha256:" + h + "\n", "SHA256:" + h, h,
	}
}()

func TestIsDigestMatchesRegexp(t *testing.T) {
	t.Parallel()
	for _, d := range digestSeeds {
		if got, want := isDigest(d), DigestPattern.MatchString(d); got != want {
			t.Errorf("isDigest(%q) = %v, the regexp says %v", d, got, want)
		}
	}
}

func FuzzIsDigest(f *testing.F) {
	for _, d := range digestSeeds {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if got, want := isDigest(d), DigestPattern.MatchString(d); got != want {
			t.Errorf("isDigest(%q) = %v, the regexp says %v", d, got, want)
		}
	})
}
