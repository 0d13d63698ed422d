package gitstore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

func treeSeed(entries ...Entry) []byte { return encodeTree(entries) }

func FuzzParseTree(f *testing.F) {
	h := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	f.Add(treeSeed())
	f.Add(treeSeed(Entry{Name: "a", Hash: h, Mode: filemode.Regular}))
	f.Add(treeSeed(
		Entry{Name: "a", Hash: h, Mode: filemode.Regular},
		Entry{Name: "a-b", Hash: h, Mode: filemode.Executable},
		Entry{Name: "a", Hash: h, Mode: filemode.Dir},
	))
	f.Add(treeSeed(Entry{Name: "link", Hash: h, Mode: filemode.Symlink}, Entry{Name: "sub", Hash: h, Mode: filemode.Submodule}))
	f.Add([]byte("040000 a\x00" + strings.Repeat("x", 20)))
	f.Add([]byte("100644 ..\x00" + strings.Repeat("x", 20)))
	f.Add([]byte("100644 b\x00" + strings.Repeat("x", 20) + "100644 a\x00" + strings.Repeat("x", 20)))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseTree(data)
		if err != nil {
			return
		}
		// A tree that parses is in canonical form: it encodes to the same
		// bytes, so its id is what git computes.
		if enc := encodeTree(entries); !bytes.Equal(enc, data) {
			t.Fatalf("encode(parse(x)) != x:\n%q\n%q", enc, data)
		}
		names := map[string]bool{}
		for i, e := range entries {
			if err := checkName(e.Name); err != nil {
				t.Fatalf("parsed an unsafe name: %v", err)
			}
			if names[e.Name] {
				t.Fatalf("name %q twice", e.Name)
			}
			names[e.Name] = true
			if i > 0 && compareEntries(entries[i-1], e) >= 0 {
				t.Fatalf("entries out of order: %q, %q", entries[i-1].Name, e.Name)
			}
			if got := findEntry(entries, e.Name); got != i {
				t.Fatalf("findEntry(%q) = %d, want %d", e.Name, got, i)
			}
		}
	})
}

func FuzzParseCommit(f *testing.F) {
	c := &CommitInfo{
		Tree:      plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
		Parents:   []plumbing.Hash{plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")},
		Author:    testAuthor(),
		Committer: testAuthor(),
		Message:   "sign stagex/core-gcc\n",
	}
	sig := []byte("-----BEGIN PGP SIGNATURE-----\n\niHUEABYKAB0WIQ==\n=abcd\n-----END PGP SIGNATURE-----\n")
	f.Add(encodeCommit(c, nil))
	f.Add(encodeCommit(c, sig))
	f.Add([]byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\nencoding ISO-8859-1\nmergetag object x\n type commit\n\nmsg"))
	f.Add([]byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\ngpgsig a\n b\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCommit(data)
		if err != nil {
			return
		}
		if c.Signature == nil {
			if !bytes.Equal(c.Payload, data) {
				t.Fatalf("unsigned commit: payload differs from the object")
			}
		} else {
			// The payload is the same commit without its signature.
			p, err := parseCommit(c.Payload)
			if err != nil {
				t.Fatalf("payload does not parse: %v", err)
			}
			if p.Signature != nil || p.Tree != c.Tree || p.Message != c.Message ||
				len(p.Parents) != len(c.Parents) || p.Author.String() != c.Author.String() {
				t.Fatalf("payload is another commit:\n%q\n%q", c.Payload, data)
			}
		}
		// A commit with only the headers tally writes re-encodes exactly.
		if canonical, _ := parseCommit(encodeCommit(c, c.Signature)); canonical != nil {
			if got := encodeCommit(canonical, canonical.Signature); !bytes.Equal(got, encodeCommit(c, c.Signature)) {
				t.Fatalf("encode(parse(encode(c))) != encode(c)")
			}
		}
		if c.Signature != nil {
			again, err := parseCommit(encodeCommit(c, c.Signature))
			if err != nil {
				t.Fatalf("re-encoded signed commit does not parse: %v", err)
			}
			if !bytes.Equal(again.Signature, c.Signature) {
				t.Fatalf("signature changed on re-encoding:\n%q\n%q", again.Signature, c.Signature)
			}
		}
	})
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "stagex/core-gcc@sha256=00/signature-1", "", "/", "a//b", "../x", "a/.git/x", ".GIT", "a\\b", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		// An accepted path stays inside the tree and cannot reach .git.
		if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range splitPath(p) {
			if c == "" || c == "." || c == ".." || strings.EqualFold(c, ".git") || strings.ContainsAny(c, "\\\x00\n") {
				t.Fatalf("accepted %q with component %q", p, c)
			}
		}
		if strings.Join(splitPath(p), "/") != p {
			t.Fatalf("split and join changed %q", p)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"A U Thor <a@example.org> 1700000000 +0100", "<> 0 +0000", "A <a> 1 -0530", "A <a> 01 +0000", "A <<a>> 1 +0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseSignature(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(sig.Name+sig.Email, "<>\n") {
			t.Fatalf("parsed %q with brackets or newlines in %q <%s>", s, sig.Name, sig.Email)
		}
		again, err := parseSignature(formatSignature(sig))
		if err != nil {
			t.Fatalf("format(parse(%q)) = %q does not parse: %v", s, formatSignature(sig), err)
		}
		if again.Name != sig.Name || again.Email != sig.Email || !again.When.Equal(sig.When) {
			t.Fatalf("round trip changed %q: %+v vs %+v", s, sig, again)
		}
	})
}
