package sample

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteDockerSave writes into dir (which must not exist) the unpacked
// `docker save` form of a sample image named after dir's base name:
// manifest.json, the config and the layer, but no oci-layout or index.json.
// It stands for a build that used the wrong exporter.
func WriteDockerSave(dir string) error {
	spec := Spec{Name: filepath.Base(dir), Tag: "1.0.0", Seed: "docker-save"}
	if err := checkName(spec.Name); err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	platforms, err := parsePlatforms(nil)
	if err != nil {
		return err
	}
	img, err := platformImage(spec, platforms[0])
	if err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	ref, err := name.NewTag(Namespace + "/" + spec.Name + ":" + spec.Tag)
	if err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	var archive bytes.Buffer
	if err := tarball.Write(ref, img, &archive); err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	if err := untarFlat(&archive, dir); err != nil {
		return fmt.Errorf("writing docker save sample: %w", err)
	}
	return nil
}

// untarFlat extracts an archive of regular files with plain names, the only
// shape tarball.Write produces.
func untarFlat(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) {
			return fmt.Errorf("unexpected archive entry %q", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, h.Name), data, 0o644); err != nil {
			return err
		}
	}
}
