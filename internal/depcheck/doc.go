// Package depcheck holds no code: its test enforces tally's dependency
// rules (docs/design.md, "Dependency rules") on the module as it is built,
// in the spirit of go-containerregistry's depcheck_test.go. Run it with
//
//	go test ./internal/depcheck/
//
// A failure names the package and the import (or call) that breaks a rule.
package depcheck
