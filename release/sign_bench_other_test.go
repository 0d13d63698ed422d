//go:build !linux

package release

import "time"

// processCPU is not measured here: the CPU metrics read 0.
func processCPU() time.Duration { return 0 }

// threadCPU runs f; its CPU time is not measured here.
func threadCPU(f func()) time.Duration { f(); return 0 }
