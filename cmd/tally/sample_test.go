package main

import (
	"os"

	"github.com/tally-sig/tally/internal/sample"
)

// mksampleMain is the testscript command "mksample -out DIR [-flat] NAME:TAG[:SEED][:PLATFORMS]...":
// it writes deterministic sample OCI layouts like a StageX build leaves in out/.
func mksampleMain() int {
	return sample.Main(os.Args[1:], os.Stdout, os.Stderr)
}
