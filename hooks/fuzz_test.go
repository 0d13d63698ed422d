package hooks

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/sigstore"
)

var fuzzPolicy = policy.Policy{Namespace: "stagex", IdentityPrefix: "stagex", Threshold: 2, Keyring: "stagex-keyring.pgp",
	ExtraPaths: policy.NewNames("README.md", "docs/")}

func TestClassifyPath(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	fpr := strings.Repeat("A", 40)
	for _, tc := range []struct {
		path    string
		class   policy.Class
		problem string
	}{
		{"tally.toml", policy.ClassPolicy, ""},
		{"stagex-keyring.pgp", policy.ClassPolicy, ""},
		{"stagex/core-gcc@sha256=" + hex + "/signature-1", policy.ClassLookaside, ""},
		{"stagex/a/b@sha256=" + hex + "/signature-12", policy.ClassLookaside, ""},
		{"stagex/core-gcc@sha256=" + hex + "/signature-0", policy.ClassLookaside, "start at 1"},
		{"stagex/core-gcc@sha256=" + hex + "/sig-1", policy.ClassLookaside, "does not start with"},
		{"stagex/core-gcc@sha256=" + strings.ToUpper(hex) + "/signature-1", policy.ClassLookaside, "lowercase hex"},
		{"stagex/core-gcc@sha512=" + hex + "/signature-1", policy.ClassLookaside, "not sha256"},
		{"stagex/core-gcc@sha256=" + hex, policy.ClassLookaside, "no \"@sha256=\""},
		{"stagex/README", policy.ClassLookaside, "no \"@sha256=\""},
		{"stagexx/core@sha256=" + hex + "/signature-1", policy.ClassUnknown, ""},
		{"builds/2026.11.0/" + fpr + ".txt", policy.ClassBuildRecord, ""},
		{"builds/2026.11.0/" + strings.ToLower(fpr) + ".txt", policy.ClassBuildRecord, "uppercase hex"},
		{"builds/2026.11.0/x/" + fpr + ".txt", policy.ClassBuildRecord, "not a build record path"},
		{"builds/../" + fpr + ".txt", policy.ClassBuildRecord, "use letters"},
		{"releases/2026.11.0/digests.txt", policy.ClassRelease, ""},
		{"releases/2026.11.0", policy.ClassRelease, "not a release manifest path"},
		{"approvals/" + hex + "/statement", policy.ClassApproval, ""},
		{"approvals/" + hex + "/" + fpr + ".asc", policy.ClassApproval, ""},
		{"approvals/" + hex + "/notes.txt", policy.ClassApproval, "neither"},
		{"approvals/xyz/statement", policy.ClassApproval, "not 64 lowercase hex"},
		{"README.md", policy.ClassExtra, ""},
		{"docs/a/b.md", policy.ClassExtra, ""},
		{"docs", policy.ClassUnknown, ""},
		{".gitattributes", policy.ClassUnknown, ""},
	} {
		info := policy.ClassifyPath(fuzzPolicy, tc.path)
		if info.Class != tc.class || !strings.Contains(info.Problem, tc.problem) || tc.problem == "" && info.Problem != "" {
			t.Errorf("policy.ClassifyPath(%q) = %s %q, want %s %q", tc.path, info.Class, info.Problem, tc.class, tc.problem)
		}
	}
}

// FuzzClassifyPath: every path gets a class; a well-formed path of each
// class rebuilds exactly from what policy.ClassifyPath parsed.
func FuzzClassifyPath(f *testing.F) {
	hex := strings.Repeat("0f", 32)
	for _, s := range []string{"tally.toml", "stagex/core-gcc@sha256=" + hex + "/signature-1", "builds/1.0/" + strings.Repeat("A", 40) + ".txt",
		"releases/1.0/release.json", "approvals/" + hex + "/statement", "approvals/" + hex + "/" + strings.Repeat("B", 40) + ".asc",
		"docs/x", "stagex/a/b/c@sha256=" + hex + "/signature-007", "", "/", "stagex/", "builds//x.txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		info := policy.ClassifyPath(fuzzPolicy, p)
		if info != policy.ClassifyPath(fuzzPolicy, p) {
			t.Fatal("not deterministic")
		}
		if info.Problem != "" {
			return
		}
		switch info.Class {
		case policy.ClassPolicy:
			if p != policy.PolicyFile && p != fuzzPolicy.Keyring {
				t.Fatalf("%q classified as policy", p)
			}
		case policy.ClassLookaside:
			if info.Location.Path() != p || "stagex/"+info.Name != info.Location.Repository {
				t.Fatalf("%q: location %+v name %q", p, info.Location, info.Name)
			}
			if _, err := sigstore.ParseLocation(p); err != nil {
				t.Fatalf("%q accepted but ParseLocation says %v", p, err)
			}
		case policy.ClassBuildRecord:
			if policy.BuildRecordPath(info.Release, info.Fingerprint) != p || policy.CheckReleaseName(info.Release) != nil {
				t.Fatalf("%q: release %q fingerprint %q", p, info.Release, info.Fingerprint)
			}
		case policy.ClassRelease:
			if !strings.HasPrefix(p, "releases/"+info.Release+"/") || policy.CheckReleaseName(info.Release) != nil {
				t.Fatalf("%q: release %q", p, info.Release)
			}
		case policy.ClassApproval:
			want := statementPath(info.ApprovalID)
			if !info.Statement {
				want = approvalPath(info.ApprovalID, info.Fingerprint)
			}
			if want != p {
				t.Fatalf("%q rebuilds as %q", p, want)
			}
		case policy.ClassExtra:
			if p != "README.md" && !strings.HasPrefix(p, "docs/") {
				t.Fatalf("%q classified as extra", p)
			}
		case policy.ClassUnknown:
			if strings.HasPrefix(p, "stagex/") || strings.HasPrefix(p, "builds/") || strings.HasPrefix(p, "approvals/") {
				t.Fatalf("%q of a known part classified as unknown", p)
			}
		default:
			t.Fatalf("%q: class %q", p, info.Class)
		}
	})
}

func TestStatement(t *testing.T) {
	t.Parallel()
	data := someStatement.Marshal()
	want := "tally trust policy change v2\nrepository stagex\nbase " + someStatement.Base + "\nfrom " + someStatement.From + "\nto " + someStatement.To + "\nthreshold 2 -> 1\n"
	if string(data) != want {
		t.Errorf("Marshal = %q", data)
	}
	got, err := ParseStatement(data)
	if err != nil || !bytes.Equal(got.Marshal(), data) || got.ID() != someStatement.ID() {
		t.Errorf("ParseStatement: %v, %+v", err, got)
	}
	// Version 1 statements are still read (for history), and written back
	// byte for byte.
	v1 := "tally trust policy change v1\nfrom " + someStatement.From + "\nto " + someStatement.To + "\nthreshold 2 -> 1\n"
	if got, err := ParseStatement([]byte(v1)); err != nil || got.Version != 1 || string(got.Marshal()) != v1 {
		t.Errorf("ParseStatement(v1): %v, %+v", err, got)
	}
	for name, bad := range map[string]string{
		"empty":         "",
		"no newline":    strings.TrimSuffix(want, "\n"),
		"header":        strings.Replace(want, "v2", "v3", 1),
		"v1 with base":  strings.Replace(want, "v2", "v1", 1),
		"v2 no base":    strings.Replace(v1, "v1", "v2", 1),
		"short base":    strings.Replace(want, "base ab", "base b", 1),
		"upper base":    strings.Replace(want, "base ab", "base AB", 1),
		"no repository": strings.Replace(want, "repository stagex", "repository ", 1),
		"same":          "tally trust policy change v2\nrepository stagex\nbase " + someStatement.Base + "\nfrom " + someStatement.From + "\nto " + someStatement.From + "\n",
		"bad from":      strings.Replace(want, "from tally.toml", "from policy.toml", 1),
		"blank line":    want + "\n",
		"control":       want + "add-key \x1b[2J\n",
		"crlf":          strings.ReplaceAll(want, "\n", "\r\n"),
		"not utf8":      want + "add-key \xff\n",
		"upper first":   want + "Add-key X\n",
	} {
		if _, err := ParseStatement([]byte(bad)); err == nil {
			t.Errorf("%s: ParseStatement accepted %q", name, bad)
		}
	}
}

// FuzzParseStatement: what ParseStatement accepts, Marshal gives back byte
// for byte, so the ID of a parsed statement is the SHA-256 of its file.
func FuzzParseStatement(f *testing.F) {
	f.Add(someStatement.Marshal())
	f.Add([]byte("tally trust policy change v1\nfrom x\nto y\n"))
	f.Add([]byte("tally trust policy change v2\nrepository stagex\nbase " + strings.Repeat("0", 40) + "\nfrom x\nto y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatement(data)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Marshal(), data) {
			t.Fatalf("round trip changed %q to %q", data, s.Marshal())
		}
		if "sha256:"+s.ID() != sha256Hex(data) {
			t.Fatal("ID is not the SHA-256 of the file")
		}
	})
}
