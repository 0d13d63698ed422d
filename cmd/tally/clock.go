package main

import (
	"os"
	"time"
)

// timeNow is the clock of every command. Tests pin it with TALLY_TEST_NOW
// (RFC 3339) so that commits and signatures in end-to-end tests are stable.
func timeNow() time.Time {
	if s := os.Getenv("TALLY_TEST_NOW"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Now()
}
