package gitstore

import "github.com/tally-sig/tally/internal/fault"

// faultPoint marks a write step for the crash tests (see internal/fault).
func faultPoint(name string) { fault.Point(name) }
