package sigstore

import "testing"

// The hand-written checks on the signature path must accept exactly what the
// regexps they replace accept.

var pathComponentSeeds = []string{
	"", "a", "0", "core-gcc", "a.b", "a_b", "a__b", "a___b", "a-b", "a--b", "a---b",
	"a.", ".a", "_a", "a_", "-a", "a-", "a..b", "a._b", "a-.b", "a-_b", "A", "aB",
	"a/b", "a b", "a\x00b", "é", "a.b_c__d-e--f", "a__", "__", "-", ".", "a.-b",
}

func TestIsPathComponentMatchesRegexp(t *testing.T) {
	t.Parallel()
	for _, c := range pathComponentSeeds {
		if got, want := isPathComponent(c), pathComponentRegexp.MatchString(c); got != want {
			t.Errorf("isPathComponent(%q) = %v, the regexp says %v", c, got, want)
		}
	}
}

func FuzzIsPathComponent(f *testing.F) {
	for _, c := range pathComponentSeeds {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		if got, want := isPathComponent(c), pathComponentRegexp.MatchString(c); got != want {
			t.Errorf("isPathComponent(%q) = %v, the regexp says %v", c, got, want)
		}
	})
}

var digestSeeds = []string{
	"", "sha256:", "sha256:" + hex64, "sha256:" + hex64 + "0", "sha256:" + hex64[1:],
	"sha256:" + hex64[1:] + "A", "sha256:" + hex64[1:] + "g", "sha512:" + hex64,
	"sha256:" + hex64 + "\n", "SHA256:" + hex64,
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestIsSHA256DigestMatchesRegexp(t *testing.T) {
	t.Parallel()
	for _, d := range digestSeeds {
		if got, want := isSHA256Digest(d), sha256DigestRegexp.MatchString(d); got != want {
			t.Errorf("isSHA256Digest(%q) = %v, the regexp says %v", d, got, want)
		}
	}
}

func FuzzIsSHA256Digest(f *testing.F) {
	for _, d := range digestSeeds {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if got, want := isSHA256Digest(d), sha256DigestRegexp.MatchString(d); got != want {
			t.Errorf("isSHA256Digest(%q) = %v, the regexp says %v", d, got, want)
		}
	})
}
