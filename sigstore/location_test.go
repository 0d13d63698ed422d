package sigstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want Location
	}{
		{"stagex/core-gcc@sha256=" + testHex + "/signature-1", Location{Repository: "stagex/core-gcc", Digest: testDigest, Number: 1}},
		{"stagex/core-gcc@sha256=" + testHex + "/signature-12", Location{Repository: "stagex/core-gcc", Digest: testDigest, Number: 12}},
		{"busybox@sha256=" + testHex + "/signature-3", Location{Repository: "busybox", Digest: testDigest, Number: 3}},
		{"a/b/c__d.e-f@sha256=" + testHex + "/signature-2147483647", Location{Repository: "a/b/c__d.e-f", Digest: testDigest, Number: 2147483647}},
		{"foo.bar@sha256=" + testHex + "/signature-1", Location{Repository: "foo.bar", Digest: testDigest, Number: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLocation(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.Path() != tt.path {
				t.Errorf("Path() = %q, want %q", got.Path(), tt.path)
			}
			if dir, _, _ := cutLast(tt.path, "/"); got.Dir() != dir {
				t.Errorf("Dir() = %q, want %q", got.Dir(), dir)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseLocationRejects(t *testing.T) {
	t.Parallel()
	dir := "stagex/a@sha256=" + testHex
	tests := []struct {
		name, path, want string
	}{
		{"empty", "", "no signature directory"},
		{"no directory", "signature-1", "no signature directory"},
		{"no at", "stagex/a/signature-1", `no "@sha256="`},
		{"empty repository", "@sha256=" + testHex + "/signature-1", "empty repository"},
		{"absolute", "/stagex/a@sha256=" + testHex + "/signature-1", "must be relative"},
		{"empty component", "stagex//a@sha256=" + testHex + "/signature-1", "empty path component"},
		{"dot component", "stagex/./a@sha256=" + testHex + "/signature-1", `"." path component`},
		{"dotdot component", "../a@sha256=" + testHex + "/signature-1", `".." path component`},
		{"uppercase", "stagex/A@sha256=" + testHex + "/signature-1", `component "A"`},
		{"leading dash", "stagex/-a@sha256=" + testHex + "/signature-1", `component "-a"`},
		{"registry host", "docker.io/stagex/a@sha256=" + testHex + "/signature-1", "registry host"},
		{"localhost host", "localhost/a@sha256=" + testHex + "/signature-1", "registry host"},
		{"port", "host:5000/a@sha256=" + testHex + "/signature-1", `component "host:5000"`},
		{"too long", strings.Repeat("a", 256) + "@sha256=" + testHex + "/signature-1", "longer than 255"},
		{"colon digest", "stagex/a@sha256:" + testHex + "/signature-1", "not written as sha256=<hex>"},
		{"other algorithm", "stagex/a@sha512=" + testHex + "/signature-1", `algorithm "sha512"`},
		{"short hex", "stagex/a@sha256=" + testHex[:63] + "/signature-1", "not 64 lowercase hex"},
		{"uppercase hex", "stagex/a@sha256=" + strings.ToUpper(testHex) + "/signature-1", "not 64 lowercase hex"},
		{"wrong file name", dir + "/sig-1", `does not start with "signature-"`},
		{"no number", dir + "/signature-", "no number"},
		{"zero", dir + "/signature-0", "start at 1"},
		{"leading zero", dir + "/signature-01", "leading zero"},
		{"plus sign", dir + "/signature-+1", "not a decimal number"},
		{"negative", dir + "/signature--1", "not a decimal number"},
		{"suffix", dir + "/signature-1.asc", "not a decimal number"},
		{"too large", dir + "/signature-2147483648", "too large"},
		{"huge", dir + "/signature-99999999999999999999999", "too large"},
		{"trailing slash", dir + "/signature-1/", `ends with "/"`},
		{"nested", dir + "/x/signature-1", "extra path components after the digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := ParseLocation(tt.path)
			if err == nil {
				t.Fatalf("ParseLocation(%q) = %+v, want an error", tt.path, loc)
			}
			var le *LocationError
			if !errors.As(err, &le) || le.Path != tt.path {
				t.Errorf("error %v is not a *LocationError for the path", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseLocationDir(t *testing.T) {
	t.Parallel()
	got, err := ParseLocationDir("stagex/a@sha256=" + testHex)
	if err != nil {
		t.Fatal(err)
	}
	want := Location{Repository: "stagex/a", Digest: testDigest}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.String() != "stagex/a@sha256="+testHex {
		t.Errorf("String() = %q", got.String())
	}
	if _, err := ParseLocationDir("stagex/a@sha256=" + testHex + "/signature-1"); err == nil {
		t.Error("ParseLocationDir accepted a file path")
	}
}

func FuzzParseLocation(f *testing.F) {
	f.Add("stagex/core-gcc@sha256=" + testHex + "/signature-1")
	f.Add("a@sha256=" + testHex + "/signature-10")
	f.Add("a/../b@sha256=" + testHex + "/signature-01")
	f.Fuzz(func(t *testing.T, path string) {
		loc, err := ParseLocation(path)
		if err != nil {
			var le *LocationError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LocationError", err)
			}
			return
		}
		if got := loc.Path(); got != path {
			t.Fatalf("ParseLocation(%q).Path() = %q", path, got)
		}
		if err := loc.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate fails: %v", path, err)
		}
		if loc.Number < 1 {
			t.Fatalf("accepted number %d", loc.Number)
		}
		for _, c := range strings.Split(loc.Repository, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("accepted component %q in %q", c, path)
			}
		}
		dir, err := ParseLocationDir(loc.Dir())
		if err != nil || dir.Repository != loc.Repository || dir.Digest != loc.Digest {
			t.Fatalf("ParseLocationDir(%q) = %+v, %v", loc.Dir(), dir, err)
		}
		// The repository is a registry-less path: clients read it with
		// the default registry.
		if _, err := NormalizeRepository(loc.Repository); err != nil {
			t.Fatalf("repository %q of an accepted path does not normalise: %v", loc.Repository, err)
		}
	})
}
