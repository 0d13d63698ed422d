package sample

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/tally-sig/tally/buildout"
)

// Main is the mksample command: it writes sample layouts as a StageX-style
// build leaves them in out/, and prints their digest list. It returns the
// exit code (2 for usage errors); the demo and the end-to-end tests run it.
//
//	mksample -out DIR [-flat] NAME:TAG[:SEED][:PLATFORMS] ...
//	mksample -out DIR -docker-save NAME
func Main(args []string, stdout, stderr io.Writer) int {
	if err := run(args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "mksample: error: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage: mksample -out DIR [-flat] NAME:TAG[:SEED][:PLATFORMS] ... | mksample -out DIR -docker-save NAME")

func run(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("mksample", flag.ContinueOnError)
	flags.SetOutput(stderr)
	out := flags.String("out", "", "output directory (required)")
	flat := flags.Bool("flat", false, "write flat layouts (index.json lists the image manifests)")
	dockerSave := flags.String("docker-save", "", "write a `docker save` directory with this name instead")
	if err := flags.Parse(args); err != nil {
		return errUsage
	}
	if *out == "" {
		return fmt.Errorf("%w: -out is required", errUsage)
	}
	if *dockerSave != "" {
		if flags.NArg() > 0 || *flat {
			return fmt.Errorf("%w: -docker-save takes no other arguments", errUsage)
		}
		return WriteDockerSave(filepath.Join(*out, *dockerSave))
	}
	if flags.NArg() == 0 {
		return fmt.Errorf("%w: name no image", errUsage)
	}
	var specs []Spec
	for _, arg := range flags.Args() {
		spec, err := parseSpec(arg)
		if err != nil {
			return err
		}
		spec.Flat = *flat
		specs = append(specs, spec)
	}
	digests, err := Write(*out, specs...)
	if err != nil {
		return err
	}
	var entries []buildout.DigestEntry
	for name, list := range digests {
		for _, d := range list {
			entries = append(entries, buildout.DigestEntry{Digest: d, Name: name})
		}
	}
	return buildout.WriteDigestList(stdout, entries)
}

// parseSpec parses NAME:TAG[:SEED][:PLATFORMS].
func parseSpec(arg string) (Spec, error) {
	parts := strings.Split(arg, ":")
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return Spec{}, fmt.Errorf("%w: %q is not NAME:TAG[:SEED][:PLATFORMS]", errUsage, arg)
	}
	spec := Spec{Name: parts[0], Tag: parts[1]}
	if len(parts) > 2 {
		spec.Seed = parts[2]
	}
	if len(parts) > 3 && parts[3] != "" {
		spec.Platforms = strings.Split(parts[3], ",")
	}
	return spec, nil
}
