package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TagRequest describes an annotated tag for Repo.CreateTag.
type TagRequest struct {
	// Name is the tag's name, without refs/tags/.
	Name string
	// Target is the object tagged, normally a commit.
	Target plumbing.Hash
	// Message is the tag message; a final newline is added if missing.
	Message string
	// Tagger identifies who made the tag; a zero When is the current time.
	Tagger object.Signature
	// Sign, when set, returns an ASCII-armored detached signature over the
	// tag object encoded without a signature; nil makes an unsigned tag.
	Sign func(data []byte) ([]byte, error)
}

// CreateTag writes an annotated tag object, signed when req.Sign is set, and
// creates refs/tags/<name> pointing at it. It never moves an existing tag:
// then the error wraps ErrTagExists. It returns the tag object's id.
func (r *Repo) CreateTag(req TagRequest) (plumbing.Hash, error) {
	ref := plumbing.NewTagReferenceName(req.Name)
	if req.Name == "" || strings.HasPrefix(req.Name, "refs/") || ref.Validate() != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag: bad tag name %q", req.Name)
	}
	if cur, err := r.refOrZero(ref); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: %w", req.Name, err)
	} else if !cur.IsZero() {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: it points at %s: %w", req.Name, cur, ErrTagExists)
	}
	typ, _, err := r.objects.ReadObject(req.Target)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: reading target %s: %w", req.Name, req.Target, err)
	}
	tagger := req.Tagger
	if tagger.When.IsZero() {
		tagger.When = r.now()
	}
	if err := checkIdentity("tagger", tagger); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: %w", req.Name, err)
	}
	msg := req.Message
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	if strings.IndexByte(msg, 0) >= 0 || strings.HasPrefix(msg, "-----BEGIN ") || strings.Contains(msg, "\n-----BEGIN ") {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: message contains a NUL byte or an armor header line", req.Name)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "object %s\ntype %s\ntag %s\ntagger %s\n\n%s", req.Target, typ, req.Name, formatSignature(tagger), msg)
	if req.Sign != nil {
		sig, err := req.Sign(b.Bytes())
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("creating tag %s: signing: %w", req.Name, err)
		}
		if err := checkArmor(sig); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("creating tag %s: signing: %w", req.Name, err)
		}
		b.Write(sig)
		if !bytes.HasSuffix(sig, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	h, err := r.writeObject(plumbing.TagObject, b.Bytes())
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: %w", req.Name, err)
	}
	err = r.updateRef(refUpdate{name: ref, new: h, who: tagger, why: "tag: " + req.Name})
	if errors.Is(err, errRefExists) {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: %w: %w", req.Name, ErrTagExists, err)
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("creating tag %s: %w", req.Name, err)
	}
	return h, nil
}
