package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/tally-sig/tally/release/policy"
)

// Errors of the registry comparison of Verify.
var (
	// ErrBadReference means an image reference cannot be compared: not a
	// docker reference with a tag or digest, or not below the namespace.
	ErrBadReference = errors.New("bad image reference")
	// ErrImageNotFound means the registry has no image by that reference.
	// (ErrRegistryUnavailable and ErrRegistryDenied, shared with Publish,
	// say that it could not be asked.)
	ErrImageNotFound = errors.New("the registry has no such image")
)

// maxIndexDepth bounds nested image indexes in a registry.
const maxIndexDepth = 2

// RegistryRef is an image reference to compare: a repository below the
// namespace of the signatures repository, with a tag or a digest.
type RegistryRef struct {
	ref  name.Reference
	Name string // image name below the namespace
	Tag  string // "" for a digest reference
}

func (r RegistryRef) String() string { return "docker://" + r.ref.Name() }

// ParseRegistryRef parses "docker://host/ns/name:tag" (the transport
// Prefix is optional) for policy p.
func ParseRegistryRef(s string, p policy.Policy) (RegistryRef, error) {
	raw := trimDocker(s)
	if i := strings.Index(raw, "://"); i >= 0 {
		return RegistryRef{}, fmt.Errorf("%w: %q: only docker:// references name registry images", ErrBadReference, s)
	}
	ref, err := name.ParseReference(raw)
	if err != nil {
		return RegistryRef{}, fmt.Errorf("%w: %q: %v", ErrBadReference, s, err)
	}
	r := RegistryRef{ref: ref}
	switch v := ref.(type) {
	case name.Tag:
		if !strings.HasSuffix(raw, ":"+v.TagStr()) {
			return RegistryRef{}, fmt.Errorf("%w: %q names no tag: say which (NAME:TAG) or give a digest (NAME@sha256:…)", ErrBadReference, s)
		}
		r.Tag = v.TagStr()
	case name.Digest:
	}
	repo := ref.Context().RepositoryStr()
	var ok bool
	if r.Name, ok = strings.CutPrefix(repo, p.Namespace+"/"); !ok {
		return RegistryRef{}, fmt.Errorf("%w: %q: repository %s is not below the namespace %s of this signatures repository",
			ErrBadReference, s, repo, p.Namespace)
	}
	return r, nil
}

// FetchedImage is what a registry serves for a reference: its per-platform
// image manifests.
type FetchedImage struct {
	Ref       RegistryRef
	Manifests []FetchedManifest
}

// FetchRegistry asks the registry for the manifest (or index) of ref, the
// way a consumer pulling it would get it: digests are of the exact bytes
// served, checked by go-containerregistry.
// tlsOpts says which CAs to trust and which registries are insecure.
func FetchRegistry(ctx context.Context, ref RegistryRef, keychain authn.Keychain, tlsOpts TLSOptions) (FetchedImage, error) {
	opts := []remote.Option{remote.WithContext(ctx)}
	if keychain != nil {
		opts = append(opts, remote.WithAuthFromKeychain(keychain))
	}
	if tlsOpts.CertDir != "" || len(tlsOpts.Insecure) > 0 {
		rt, err := tlsOpts.Transport()
		if err != nil {
			return FetchedImage{}, err
		}
		opts = append(opts, remote.WithTransport(rt))
	}
	target := ref.ref
	if nopts := tlsOpts.NameOptions(ref.ref.Context().RegistryStr()); len(nopts) > 0 {
		r, err := name.ParseReference(ref.ref.String(), nopts...)
		if err != nil {
			return FetchedImage{}, fmt.Errorf("%w: %q: %v", ErrBadReference, ref, err)
		}
		target = r
	}
	desc, err := remote.Get(target, opts...)
	if err != nil {
		return FetchedImage{}, fetchError(ref, err)
	}
	img := FetchedImage{Ref: ref}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return FetchedImage{}, fetchError(ref, err)
		}
		if err := img.addIndex(idx, 1); err != nil {
			return FetchedImage{}, fetchError(ref, err)
		}
	case desc.MediaType.IsImage():
		im, err := desc.Image()
		if err != nil {
			return FetchedImage{}, fetchError(ref, err)
		}
		cfg, err := im.ConfigFile()
		if err != nil {
			return FetchedImage{}, fetchError(ref, err)
		}
		img.Manifests = append(img.Manifests, FetchedManifest{Digest: desc.Digest.String(), Platform: platformString(cfg.OS, cfg.Architecture, cfg.Variant)})
	default:
		return FetchedImage{}, fmt.Errorf("reading %s: a %s, not an image or image index", ref, desc.MediaType)
	}
	if len(img.Manifests) == 0 {
		return FetchedImage{}, fmt.Errorf("reading %s: an image index without image manifests", ref)
	}
	return img, nil
}

// addIndex adds the image manifests of an index, leaving out BuildKit's
// attestation manifests as buildout does.
func (img *FetchedImage) addIndex(idx v1.ImageIndex, depth int) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		switch {
		case d.MediaType.IsIndex():
			if depth >= maxIndexDepth {
				return fmt.Errorf("image indexes nested more than %d deep", maxIndexDepth)
			}
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := img.addIndex(child, depth+1); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			platform := ""
			if d.Platform != nil {
				platform = platformString(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
			}
			if platform == "" {
				child, err := idx.Image(d.Digest)
				if err != nil {
					return err
				}
				cfg, err := child.ConfigFile()
				if err != nil {
					return err
				}
				platform = platformString(cfg.OS, cfg.Architecture, cfg.Variant)
			}
			img.Manifests = append(img.Manifests, FetchedManifest{Digest: d.Digest.String(), Platform: platform})
		}
	}
	return nil
}

// platformString writes a platform as buildout and the build records do:
// "os/arch" or "os/arch/variant"; "" when unknown.
func platformString(os, arch, variant string) string {
	if os == "" && arch == "" {
		return ""
	}
	p := os + "/" + arch
	if variant != "" {
		p += "/" + variant
	}
	return p
}

// fetchError classifies an error of go-containerregistry: no such image,
// or what registryError says.
func fetchError(ref RegistryRef, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s", ErrImageNotFound, ref)
	}
	return RegistryError("reading "+ref.String(), err)
}

// FetchedManifest is one per-platform manifest of a compared image.
type FetchedManifest struct {
	Digest, Platform string
}

// TrimDocker removes the docker:// transport prefix of a reference.
func trimDocker(s string) string { return strings.TrimPrefix(s, "docker://") }

// Keychain gives registry credentials: go-containerregistry's
// authn.Keychain, named here so that callers of Verify and Publish need not
// import authn.
type Keychain = authn.Keychain

// DefaultKeychain is authn.DefaultKeychain: the credentials docker and
// podman use (their config files and credential helpers).
var DefaultKeychain = authn.DefaultKeychain
