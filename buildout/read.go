package buildout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Read reads the image layouts of a build output directory such as out/.
//
// With no names it reads every immediate subdirectory of outDir that holds an
// oci-layout, index.json or manifest.json file (the last two so that a broken
// or docker-save-style output is reported, not passed over); other entries,
// and names starting with ".", are ignored. With names it reads exactly those
// subdirectories, and a missing one is an error.
//
// The images come back sorted by name. Read does not stop at the first bad
// layout: it returns the images it could read together with an error joining
// one *LayoutError per layout it could not (nil if there were none). An
// outDir that cannot be listed is an error of its own, with no images.
func Read(outDir string, names []string) ([]Image, error) {
	var errs []error
	if len(names) == 0 {
		found, err := discover(outDir)
		if err != nil {
			return nil, err
		}
		names = found
	} else {
		names = slices.Clone(names)
		slices.Sort(names)
		names = slices.Compact(names)
	}

	var images []Image
	for _, name := range names {
		img, err := readDir(outDir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		images = append(images, img)
	}
	return images, errors.Join(errs...)
}

// readDir reads the layout outDir/name.
func readDir(outDir, name string) (Image, error) {
	dir := filepath.Join(outDir, name)
	fail := func(err error) (Image, error) {
		return Image{}, &LayoutError{Dir: dir, Err: err}
	}
	if err := checkName(name); err != nil {
		return fail(err)
	}
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("%w: no such directory", ErrNotLayout))
	}
	if err != nil {
		return fail(err)
	}
	if !info.IsDir() {
		return fail(fmt.Errorf("%w: not a directory", ErrNotLayout))
	}
	// os.Root keeps symbolic links from leading the reader out of the layout.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	img, err := readLayout(root.FS(), name)
	if err != nil {
		return fail(err)
	}
	img.Dir = dir
	return img, nil
}

// discover lists the subdirectories of outDir that look like build outputs.
func discover(outDir string) ([]string, error) {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return nil, fmt.Errorf("reading build output directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		dir := filepath.Join(outDir, name)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue // not a directory (or a dangling link): not a layout
		}
		for _, marker := range []string{"oci-layout", "index.json", "manifest.json"} {
			if _, err := os.Lstat(filepath.Join(dir, marker)); err == nil {
				names = append(names, name)
				break
			}
		}
	}
	return names, nil
}
