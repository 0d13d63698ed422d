package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tally-sig/tally/internal/sample"
)

// mksampleMain is the testscript command "mksample -out DIR [-flat] NAME:TAG[:SEED][:PLATFORMS]...":
// it writes deterministic sample OCI layouts like a StageX build leaves in out/.
func mksampleMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("mksample", flag.ContinueOnError)
	out := fs.String("out", "out", "output directory")
	flat := fs.Bool("flat", false, "flat layouts")
	if fs.Parse(args) != nil {
		return 2
	}
	var specs []sample.Spec
	for _, arg := range fs.Args() {
		parts := strings.Split(arg, ":")
		if len(parts) < 2 || len(parts) > 4 {
			fmt.Fprintf(stderr, "mksample: %q is not NAME:TAG[:SEED][:PLATFORMS]\n", arg)
			return 2
		}
		spec := sample.Spec{Name: parts[0], Tag: parts[1], Flat: *flat}
		if len(parts) > 2 {
			spec.Seed = parts[2]
		}
		if len(parts) > 3 && parts[3] != "" {
			spec.Platforms = strings.Split(parts[3], ",")
		}
		specs = append(specs, spec)
	}
	if _, err := sample.Write(*out, specs...); err != nil {
		fmt.Fprintf(stderr, "mksample: %v\n", err)
		return 1
	}
	return 0
}
