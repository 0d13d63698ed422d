//go:build tallytest

package main

import "os"

// A binary built with -tags tallytest (the hooks' interop tests build one to
// run as a real git hook) takes its clock from TALLY_TEST_NOW, as the
// end-to-end scripts do (main_test.go).
func init() { pinClock(os.Getenv("TALLY_TEST_NOW")) }
