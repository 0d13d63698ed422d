package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/release/policy"
)

// Errors of the publish targets, shared with Verify's registry reader.
var (
	// ErrRegistryUnavailable means a registry could not be reached or
	// answered with a server error: run the command again later.
	ErrRegistryUnavailable = errors.New("registry unavailable")
	// ErrRegistryDenied means a registry refused the credentials (or their absence).
	ErrRegistryDenied = errors.New("registry denied access")
	// ErrBadTarget means the destination is not REGISTRY/NAMESPACE or oci:DIR.
	ErrBadTarget = errors.New("invalid destination")
)

// OCIPrefix marks a PublishOptions.To that is a local OCI layout directory.
const OCIPrefix = "oci:"

// PublishRoot is what the tags of one image point at, read from its layout.
type PublishRoot struct {
	Taggable  remote.Taggable // v1.ImageIndex or v1.Image
	index     v1.ImageIndex   // nil for a single image manifest
	image     v1.Image        // nil for an index
	Digest    v1.Hash
	MediaType types.MediaType
	size      int64
	Images    map[string]bool // per-platform image manifest digests it holds
}

// AttestationAnnotation marks BuildKit's attestation manifests in an index.
const AttestationAnnotation = "vnd.docker.reference.type"

// LayoutRoot reads what to publish from an OCI layout: the one index
// index.json lists (BuildKit), the one image manifest it lists, or, for a flat
// layout listing several image manifests, a new index of exactly those
// manifests. Every manifest's bytes are hashed and checked against the
// descriptor that names it.
func LayoutRoot(dir string) (*PublishRoot, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the OCI layout: %w", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index.json: %w", err)
	}
	r := &PublishRoot{Images: map[string]bool{}}
	entries := im.Manifests
	switch {
	case len(entries) == 0:
		return nil, errors.New("index.json lists nothing")
	case len(entries) == 1 && entries[0].MediaType.IsIndex():
		if r.index, err = top.ImageIndex(entries[0].Digest); err != nil {
			return nil, err
		}
	case len(entries) == 1 && entries[0].MediaType.IsImage():
		if r.image, err = top.Image(entries[0].Digest); err != nil {
			return nil, err
		}
	default:
		var adds []mutate.IndexAddendum
		mt := types.OCIImageIndex
		for _, d := range entries {
			if !d.MediaType.IsImage() {
				return nil, fmt.Errorf("index.json lists %d entries and %s is not an image manifest: export one image index per layout", len(entries), d.Digest)
			}
			if d.MediaType == types.DockerManifestSchema2 {
				mt = types.DockerManifestList
			}
			img, err := top.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: d.Platform}})
		}
		r.index = mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...)
	}
	var raw []byte
	if r.index != nil {
		r.Taggable = r.index
		if raw, err = r.index.RawManifest(); err == nil {
			r.MediaType, err = r.index.MediaType()
		}
		if err == nil {
			err = r.walk(r.index, 1)
		}
	} else {
		r.Taggable = r.image
		if raw, err = r.image.RawManifest(); err == nil {
			r.MediaType, err = r.image.MediaType()
		}
		r.Images[sha256Digest(raw)] = true
	}
	if err != nil {
		return nil, err
	}
	if len(entries) == 1 && sha256Digest(raw) != entries[0].Digest.String() {
		return nil, fmt.Errorf("%s: the blob's bytes hash to %s", entries[0].Digest, sha256Digest(raw))
	}
	r.Digest, r.size, err = v1.SHA256(bytes.NewReader(raw))
	return r, err
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// walk collects the image manifests an index holds, checking every child's bytes.
func (r *PublishRoot) walk(idx v1.ImageIndex, depth int) error {
	if depth > buildout.MaxIndexDepth {
		return fmt.Errorf("image indexes nested more than %d deep", buildout.MaxIndexDepth)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		var raw []byte
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if raw, err = child.RawManifest(); err != nil {
				return err
			}
			if err := r.walk(child, depth+1); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if raw, err = img.RawManifest(); err != nil {
				return err
			}
			if d.Annotations[AttestationAnnotation] == "" {
				r.Images[d.Digest.String()] = true
			}
		default:
			return fmt.Errorf("%s: media type %q is neither an image index nor an image manifest", d.Digest, d.MediaType)
		}
		if got := sha256Digest(raw); got != d.Digest.String() {
			return fmt.Errorf("%s: the blob's bytes hash to %s", d.Digest, got)
		}
	}
	return nil
}

// Target is a destination of Publish: a registry namespace or an OCI layout.
type Target interface {
	Repository(name string) string
	Warning(p policy.Policy) string
	// tagDigest returns the digest a tag points at, and whether it exists.
	TagDigest(ctx context.Context, name, tag string) (string, bool, error)
	HasManifest(ctx context.Context, name, digest string) (bool, error)
	// upload writes the root with everything it references, under tag.
	Upload(ctx context.Context, name string, root *PublishRoot, tag string, progress func(complete, total int64, done bool)) error
	// setTag points tag at a root whose content is there already.
	SetTag(ctx context.Context, name string, root *PublishRoot, tag string) error
}

// OpenTarget parses PublishOptions.To (to), for a namespace governed by p;
// keychain, transport and tlsOpts are PublishOptions.Keychain, Transport
// and TLS (a transport given wins over tlsOpts' certificates; its insecure
// registries may still be reached over plain HTTP).
func OpenTarget(to string, keychain authn.Keychain, transport http.RoundTripper, tlsOpts TLSOptions, p policy.Policy) (Target, error) {
	if dir, ok := strings.CutPrefix(to, OCIPrefix); ok {
		if dir == "" {
			return nil, fmt.Errorf("%w: %q: oci: needs a directory, as in oci:./mirror", ErrBadTarget, to)
		}
		return newOCITarget(dir, p.Namespace)
	}
	if to == "" || strings.ContainsAny(to, "@") || strings.HasSuffix(to, "/") {
		return nil, fmt.Errorf("%w: %q: want REGISTRY/NAMESPACE (like ghcr.io/stagex) or oci:DIR", ErrBadTarget, to)
	}
	if _, err := name.NewRepository(to+"/x", name.StrictValidation); err != nil {
		return nil, fmt.Errorf("%w: %q: want REGISTRY/NAMESPACE (like ghcr.io/stagex) or oci:DIR: %v", ErrBadTarget, to, err)
	}
	kc := keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if transport == nil && (tlsOpts.CertDir != "" || len(tlsOpts.Insecure) > 0) {
		var err error
		if transport, err = tlsOpts.Transport(); err != nil {
			return nil, err
		}
	}
	host := strings.SplitN(to, "/", 2)[0]
	return &registryTarget{base: to, keychain: kc, transport: transport, nameOpts: tlsOpts.NameOptions(host)}, nil
}

// registryTarget publishes to REGISTRY/NAMESPACE/<name>.
type registryTarget struct {
	base      string
	keychain  authn.Keychain
	transport http.RoundTripper
	nameOpts  []name.Option // name.Insecure for an insecure registry
}

func (t *registryTarget) repo(n string) name.Repository {
	r, err := name.NewRepository(t.base+"/"+n, append([]name.Option{name.StrictValidation}, t.nameOpts...)...)
	if err != nil {
		// openTarget checked the base and names are repository components.
		panic(fmt.Sprintf("release: repository %s/%s: %v", t.base, n, err))
	}
	return r
}

func (t *registryTarget) Repository(n string) string { return t.repo(n).Name() }

func (t *registryTarget) Warning(p policy.Policy) string {
	r := t.repo("x")
	path := strings.TrimSuffix(r.RepositoryStr(), "/x")
	if path != p.Namespace {
		return fmt.Sprintf("stock clients look up signatures of %s/<name> under %s/<name>@sha256=…/ in the lookaside, but the signatures repository keeps them under %s/: serve them there, or publish to REGISTRY/%s",
			t.base, path, p.Namespace, p.Namespace)
	}
	return ""
}

func (t *registryTarget) options(ctx context.Context) []remote.Option {
	o := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(t.keychain), remote.WithUserAgent("tally")}
	if t.transport != nil {
		o = append(o, remote.WithTransport(t.transport))
	}
	return o
}

func (t *registryTarget) head(ctx context.Context, ref name.Reference) (string, bool, error) {
	d, err := remote.Head(ref, t.options(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, RegistryError("checking "+ref.String(), err)
	}
	return d.Digest.String(), true, nil
}

func (t *registryTarget) TagDigest(ctx context.Context, n, tag string) (string, bool, error) {
	return t.head(ctx, t.repo(n).Tag(tag))
}

func (t *registryTarget) HasManifest(ctx context.Context, n, digest string) (bool, error) {
	_, found, err := t.head(ctx, t.repo(n).Digest(digest))
	return found, err
}

func (t *registryTarget) Upload(ctx context.Context, n string, root *PublishRoot, tag string, progress func(complete, total int64, done bool)) error {
	ref := t.repo(n).Tag(tag)
	opts := t.options(ctx)
	var drained chan struct{}
	if progress != nil {
		updates := make(chan v1.Update, 16)
		drained = make(chan struct{})
		go func() {
			defer close(drained)
			for u := range updates {
				progress(u.Complete, u.Total, false)
			}
		}()
		opts = append(opts, remote.WithProgress(updates))
	}
	err := remote.Push(ref, root.Taggable, opts...)
	if drained != nil {
		<-drained
	}
	if err != nil {
		return RegistryError("uploading to "+ref.String(), err)
	}
	return nil
}

func (t *registryTarget) SetTag(ctx context.Context, n string, root *PublishRoot, tag string) error {
	ref := t.repo(n).Tag(tag)
	if err := remote.Tag(ref, root.Taggable, t.options(ctx)...); err != nil {
		return RegistryError("tagging "+ref.String(), err)
	}
	return nil
}

// RegistryError classifies a registry failure: unreachable or a server
// error (retry later), credentials refused, or anything else.
func RegistryError(doing string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	// Before the HTTP status: a registry on loopback is also tried over
	// plain HTTP, whose refusal then sits beside the TLS failure.
	if IsTLSError(err) {
		return fmt.Errorf("%s: %w: %w", doing, ErrTLS, err)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w: %w", doing, ErrRegistryDenied, err)
		case terr.StatusCode >= 500 || terr.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %w: %w", doing, ErrRegistryUnavailable, err)
		}
		return fmt.Errorf("%s: %w", doing, err)
	}
	var operr *net.OpError
	var nerr net.Error
	if errors.As(err, &operr) || (errors.As(err, &nerr) && nerr.Timeout()) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w: %w", doing, ErrRegistryUnavailable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// OCITarget publishes into one local OCI image layout.
type OCITarget struct {
	Dir       string
	path      layout.Path
	Namespace string
}

// RefNameAnnotation names an entry of an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// newOCITarget checks that dir is an OCI image layout, empty, or missing;
// a missing or empty one is made into a layout by the first write.
func newOCITarget(dir, namespace string) (*OCITarget, error) {
	t := &OCITarget{Dir: dir, Namespace: namespace, path: layout.Path(dir)}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err == nil {
		if _, err := t.readIndex(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadTarget, dir, err)
		}
		return t, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrBadTarget, dir, err)
	case len(entries) > 0:
		return nil, fmt.Errorf("%w: %s is neither an OCI image layout nor empty", ErrBadTarget, dir)
	}
	return t, nil
}

// ensure makes dir an empty OCI image layout unless it is one.
func (t *OCITarget) ensure() error {
	if _, err := os.Stat(filepath.Join(t.Dir, "oci-layout")); err == nil {
		return nil
	}
	if _, err := layout.Write(t.Dir, empty.Index); err != nil {
		return fmt.Errorf("creating the OCI layout %s: %w", t.Dir, err)
	}
	return nil
}

func (t *OCITarget) Repository(string) string { return OCIPrefix + t.Dir }

func (t *OCITarget) Warning(policy.Policy) string { return "" }

func (t *OCITarget) refName(n, tag string) string { return t.Namespace + "/" + n + ":" + tag }

// readIndex reads index.json; a layout not made yet has an empty one.
func (t *OCITarget) readIndex() (*v1.IndexManifest, error) {
	data, err := os.ReadFile(filepath.Join(t.Dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(data, &im); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", t.Dir, err)
	}
	return &im, nil
}

func (t *OCITarget) TagDigest(_ context.Context, n, tag string) (string, bool, error) {
	im, err := t.readIndex()
	if err != nil {
		return "", false, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[RefNameAnnotation] == t.refName(n, tag) {
			return d.Digest.String(), true, nil
		}
	}
	return "", false, nil
}

func (t *OCITarget) HasManifest(_ context.Context, _ string, digest string) (bool, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return false, err
	}
	data, err := t.path.Bytes(h)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sha256Digest(data) == digest, nil
}

func (t *OCITarget) Upload(ctx context.Context, n string, root *PublishRoot, tag string, progress func(complete, total int64, done bool)) error {
	if err := t.ensure(); err != nil {
		return err
	}
	var err error
	if root.index != nil {
		err = t.path.WriteIndex(root.index)
	} else {
		err = t.path.WriteImage(root.image)
	}
	if err != nil {
		return fmt.Errorf("writing into %s: %w", t.Dir, err)
	}
	if progress != nil {
		progress(root.size, root.size, false)
	}
	return t.SetTag(ctx, n, root, tag)
}

// setTag replaces the index.json entry named <namespace>/<name>:<tag>,
// writing the new index.json atomically.
func (t *OCITarget) SetTag(_ context.Context, n string, root *PublishRoot, tag string) error {
	if err := t.ensure(); err != nil {
		return err
	}
	im, err := t.readIndex()
	if err != nil {
		return err
	}
	ref := t.refName(n, tag)
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		if d.Annotations[RefNameAnnotation] != ref {
			kept = append(kept, d)
		}
	}
	im.Manifests = append(kept, v1.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.size,
		Annotations: map[string]string{RefNameAnnotation: ref}})
	if im.SchemaVersion == 0 {
		im.SchemaVersion = 2
	}
	if im.MediaType == "" {
		im.MediaType = types.OCIImageIndex
	}
	data, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(t.Dir, ".index-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(t.Dir, "index.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s/index.json: %w", t.Dir, err)
	}
	return nil
}
