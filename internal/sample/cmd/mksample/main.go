// Command mksample writes deterministic sample OCI image layouts, as a
// StageX-style build leaves them in out/, for the demo and end-to-end tests.
//
// Usage:
//
//	mksample -out DIR [-flat] NAME:TAG[:SEED][:PLATFORMS] ...
//	mksample -out DIR -docker-save NAME
//
// Each argument writes DIR/NAME: PLATFORMS is a comma-separated list such as
// linux/amd64,linux/arm64 (default linux/amd64), SEED changes the content (a
// builder that diverged), and an empty TAG leaves the tag annotation out.
// With -flat, index.json lists the image manifests directly instead of
// BuildKit's nested index. mksample prints the per-platform digests as a
// digest list ("<hex> <name>" lines, sorted).
//
// -docker-save writes DIR/NAME as an unpacked `docker save` directory instead.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/sample"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mksample: error: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
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
		return sample.WriteDockerSave(filepath.Join(*out, *dockerSave))
	}
	if flags.NArg() == 0 {
		return fmt.Errorf("%w: name no image", errUsage)
	}
	var specs []sample.Spec
	for _, arg := range flags.Args() {
		spec, err := parseSpec(arg)
		if err != nil {
			return err
		}
		spec.Flat = *flat
		specs = append(specs, spec)
	}
	digests, err := sample.Write(*out, specs...)
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
func parseSpec(arg string) (sample.Spec, error) {
	parts := strings.Split(arg, ":")
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return sample.Spec{}, fmt.Errorf("%w: %q is not NAME:TAG[:SEED][:PLATFORMS]", errUsage, arg)
	}
	spec := sample.Spec{Name: parts[0], Tag: parts[1]}
	if len(parts) > 2 {
		spec.Seed = parts[2]
	}
	if len(parts) > 3 && parts[3] != "" {
		spec.Platforms = strings.Split(parts[3], ",")
	}
	return spec, nil
}
