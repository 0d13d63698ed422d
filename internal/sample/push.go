package sample

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push pushes the layout at dir to the registry reference ref the way a
// build's images reach a registry, manifest bytes unchanged: BuildKit's inner
// image index for a nested layout, the image manifest for a flat layout of one
// platform, and the whole index otherwise. Tests use it against a registry on
// loopback (plain HTTP for 127.0.0.1 by go-containerregistry's defaults).
func Push(dir, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("pushing %s: %w", dir, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return fmt.Errorf("pushing %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("pushing %s: %w", dir, err)
	}
	if len(im.Manifests) == 0 {
		return fmt.Errorf("pushing %s: index.json lists no manifest", dir)
	}
	d := im.Manifests[0]
	switch {
	case d.MediaType.IsIndex():
		inner, err := idx.ImageIndex(d.Digest)
		if err == nil {
			err = remote.WriteIndex(r, inner)
		}
		if err != nil {
			return fmt.Errorf("pushing %s to %s: %w", dir, ref, err)
		}
	case len(im.Manifests) == 1:
		img, err := idx.Image(d.Digest)
		if err == nil {
			err = remote.Write(r, img)
		}
		if err != nil {
			return fmt.Errorf("pushing %s to %s: %w", dir, ref, err)
		}
	default:
		if err := remote.WriteIndex(r, idx); err != nil {
			return fmt.Errorf("pushing %s to %s: %w", dir, ref, err)
		}
	}
	return nil
}
