// Package examples holds the CI workflows that run tally check on every
// pull request to a signatures repository: as files to copy
// (github/tally-check.yml, forgejo/tally-check.yml) and embedded, for
// tally init --ci to commit with the trust policy. Start with [Workflow].
package examples

import (
	"embed"
	"fmt"
)

//go:embed github/tally-check.yml forgejo/tally-check.yml
var files embed.FS

// Forges are the forges Workflow knows, with the path each one's workflow
// takes in a repository.
var Forges = map[string]string{
	"github":  ".github/workflows/tally-check.yml",
	"forgejo": ".forgejo/workflows/tally-check.yml",
}

// Workflow returns the tally check workflow for forge ("github" or
// "forgejo") and the path it goes to in the signatures repository.
func Workflow(forge string) (path string, data []byte, err error) {
	path, ok := Forges[forge]
	if !ok {
		return "", nil, fmt.Errorf("no CI workflow for %q: want github or forgejo", forge)
	}
	data, err = files.ReadFile(forge + "/tally-check.yml")
	if err != nil {
		return "", nil, err
	}
	return path, data, nil
}
