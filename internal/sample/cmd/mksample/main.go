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
	"os"

	"github.com/tally-sig/tally/internal/sample"
)

func main() {
	os.Exit(sample.Main(os.Args[1:], os.Stdout, os.Stderr))
}
