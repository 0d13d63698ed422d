package gitstore

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitInfo is a decoded commit object.
type CommitInfo struct {
	// Hash is the commit's id.
	Hash plumbing.Hash
	// Tree is the id of the commit's root tree.
	Tree plumbing.Hash
	// Parents are the parent commits, first parent first.
	Parents []plumbing.Hash
	// Author and Committer say who wrote the change and who committed it.
	Author, Committer object.Signature
	// Message is the commit message.
	Message string
	// Signature is the ASCII-armored signature from the gpgsig header with
	// a trailing newline, or nil when the commit is unsigned.
	Signature []byte
	// Payload is the data Signature signs: the commit object without its
	// gpgsig header, exactly as git verify-commit checks it.
	Payload []byte
}

// ReadCommit reads and decodes commit h.
func (r *Repo) ReadCommit(h plumbing.Hash) (*CommitInfo, error) {
	data, err := r.object(plumbing.CommitObject, h)
	if err != nil {
		return nil, err
	}
	c, err := parseCommit(data)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	c.Hash = h
	return c, nil
}

// parseCommit decodes a commit object the way git fsck judges one: tree,
// parents, author and committer headers in that order, then any other
// headers (a continuation line starts with a space), a blank line and the
// message.
func parseCommit(data []byte) (*CommitInfo, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("commit: NUL byte: %w", ErrBadObject)
	}
	headers, message, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("commit: no blank line after the headers: %w", ErrBadObject)
	}
	c := &CommitInfo{Message: string(message)}
	lines := strings.Split(string(headers), "\n")
	take := func(key string) (string, bool) {
		if len(lines) == 0 {
			return "", false
		}
		v, ok := strings.CutPrefix(lines[0], key+" ")
		if ok {
			lines = lines[1:]
		}
		return v, ok
	}
	var err error
	v, ok := take("tree")
	if !ok {
		return nil, fmt.Errorf("commit: no tree header first: %w", ErrBadObject)
	}
	if c.Tree, err = parseHex(v); err != nil {
		return nil, fmt.Errorf("commit: tree: %w", err)
	}
	for {
		v, ok := take("parent")
		if !ok {
			break
		}
		p, err := parseHex(v)
		if err != nil {
			return nil, fmt.Errorf("commit: parent: %w", err)
		}
		c.Parents = append(c.Parents, p)
	}
	if v, ok = take("author"); !ok {
		return nil, fmt.Errorf("commit: no author header: %w", ErrBadObject)
	}
	if c.Author, err = parseSignature(v); err != nil {
		return nil, fmt.Errorf("commit: author: %w", err)
	}
	if v, ok = take("committer"); !ok {
		return nil, fmt.Errorf("commit: no committer header: %w", ErrBadObject)
	}
	if c.Committer, err = parseSignature(v); err != nil {
		return nil, fmt.Errorf("commit: committer: %w", err)
	}

	// Other headers stay in the payload, except the signature.
	var sig []string
	inSig := false
	for _, line := range lines {
		if cont, ok := strings.CutPrefix(line, " "); ok {
			if inSig {
				sig = append(sig, cont)
			}
			continue
		}
		key, value, hasValue := strings.Cut(line, " ")
		switch {
		case key == "":
			return nil, fmt.Errorf("commit: bad header line %q: %w", line, ErrBadObject)
		case key == "tree" || key == "parent" || key == "author" || key == "committer":
			return nil, fmt.Errorf("commit: %s header out of place: %w", key, ErrBadObject)
		case key == "gpgsig" && !hasValue:
			return nil, fmt.Errorf("commit: empty gpgsig header: %w", ErrBadObject)
		case key == "gpgsig":
			if sig != nil {
				return nil, fmt.Errorf("commit: two gpgsig headers: %w", ErrBadObject)
			}
			sig = append(sig, value)
			inSig = true
			continue
		}
		inSig = false
	}
	if sig == nil {
		c.Payload = bytes.Clone(data)
		return c, nil
	}
	c.Signature = []byte(strings.Join(sig, "\n") + "\n")
	payload := make([]byte, 0, len(data))
	inSig = false
	for _, line := range strings.Split(string(headers), "\n") {
		cont := strings.HasPrefix(line, " ")
		if !cont {
			inSig = strings.HasPrefix(line, "gpgsig ")
		}
		if inSig {
			continue
		}
		payload = append(payload, line...)
		payload = append(payload, '\n')
	}
	payload = append(payload, '\n')
	c.Payload = append(payload, message...)
	return c, nil
}

// parseHex parses a full lower-case hexadecimal object id.
func parseHex(s string) (plumbing.Hash, error) {
	if len(s) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("bad object id %q: %w", s, ErrBadObject)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return plumbing.ZeroHash, fmt.Errorf("bad object id %q: %w", s, ErrBadObject)
		}
	}
	return plumbing.NewHash(s), nil
}

// parseSignature parses "Name <email> 1700000000 +0000" strictly.
func parseSignature(s string) (object.Signature, error) {
	bad := func(why string) (object.Signature, error) {
		return object.Signature{}, fmt.Errorf("bad identity %q: %s: %w", s, why, ErrBadObject)
	}
	lt := strings.IndexByte(s, '<')
	gt := strings.IndexByte(s, '>')
	if lt < 0 || gt < lt || strings.Count(s, "<") != 1 || strings.Count(s, ">") != 1 {
		return bad("want one <email>")
	}
	name, ok := strings.CutSuffix(s[:lt], " ")
	if !ok && lt > 0 {
		return bad("no space before <email>")
	}
	email := s[lt+1 : gt]
	rest, ok := strings.CutPrefix(s[gt+1:], " ")
	if !ok {
		return bad("no space after <email>")
	}
	secs, tz, ok := strings.Cut(rest, " ")
	if !ok || secs == "" || len(secs) > 1 && secs[0] == '0' {
		return bad("bad time")
	}
	unix, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || unix < 0 {
		return bad("bad time")
	}
	if len(tz) != 5 || tz[0] != '+' && tz[0] != '-' {
		return bad("bad time zone")
	}
	hh, err1 := strconv.Atoi(tz[1:3])
	mm, err2 := strconv.Atoi(tz[3:5])
	if err1 != nil || err2 != nil || strings.ContainsAny(tz[1:], "+-") || mm >= 60 {
		return bad("bad time zone")
	}
	offset := hh*3600 + mm*60
	if tz[0] == '-' {
		offset = -offset
	}
	return object.Signature{Name: name, Email: email, When: time.Unix(unix, 0).In(time.FixedZone("", offset))}, nil
}

// formatSignature encodes an identity line of a commit or tag.
func formatSignature(s object.Signature) string {
	return fmt.Sprintf("%s <%s> %d %s", s.Name, s.Email, s.When.Unix(), s.When.Format("-0700"))
}

// checkIdentity refuses names and emails that would corrupt an object.
func checkIdentity(role string, s object.Signature) error {
	if s.Name == "" || strings.TrimSpace(s.Name) != s.Name {
		return fmt.Errorf("%s name %q: empty or with leading or trailing space", role, s.Name)
	}
	if strings.ContainsAny(s.Name+s.Email, "<>\n\x00") || strings.TrimSpace(s.Email) != s.Email {
		return fmt.Errorf("%s %q <%s>: angle brackets, newlines or surrounding space", role, s.Name, s.Email)
	}
	if s.When.Unix() < 0 {
		return fmt.Errorf("%s time %s is before 1970", role, s.When)
	}
	return nil
}

// encodeCommit encodes a commit object, with a gpgsig header when sig is
// not empty. Without it the result is the payload a signature signs.
func encodeCommit(c *CommitInfo, sig []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "tree %s\n", c.Tree)
	for _, p := range c.Parents {
		fmt.Fprintf(&b, "parent %s\n", p)
	}
	fmt.Fprintf(&b, "author %s\n", formatSignature(c.Author))
	fmt.Fprintf(&b, "committer %s\n", formatSignature(c.Committer))
	if len(sig) > 0 {
		writeHeader(&b, "gpgsig", sig)
	}
	b.WriteString("\n")
	b.WriteString(c.Message)
	return b.Bytes()
}

// writeHeader writes a multi-line header value the way git does: each line
// after the first starts with a space.
func writeHeader(b *bytes.Buffer, key string, value []byte) {
	b.WriteString(key)
	for i, line := range strings.Split(strings.TrimSuffix(string(value), "\n"), "\n") {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString("\n ")
		}
		b.WriteString(line)
	}
	b.WriteString("\n")
}

// checkArmor checks that a signer returned ASCII armor that fits in a
// header: printable ASCII lines starting with an armor header line.
func checkArmor(sig []byte) error {
	if !bytes.HasPrefix(sig, []byte("-----BEGIN ")) {
		return fmt.Errorf("signature is not ASCII armor")
	}
	for _, c := range sig {
		if (c < 0x20 || c > 0x7e) && c != '\n' {
			return fmt.Errorf("signature contains byte %#x", c)
		}
	}
	return nil
}
