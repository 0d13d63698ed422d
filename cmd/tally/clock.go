package main

import "time"

// timeNow is the clock of every command: the system clock. Tests pin it with
// pinClock (the end-to-end scripts from TALLY_TEST_NOW in main_test.go, and a
// binary built with -tags tallytest in testclock.go); a production build
// never reads a test variable.
var timeNow = time.Now

// pinClock fixes timeNow at s (RFC 3339); an empty or unparsable s leaves the
// system clock.
func pinClock(s string) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		timeNow = func() time.Time { return t }
	}
}
