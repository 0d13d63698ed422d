package release

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU runs f locked to its OS thread and returns the CPU time that
// thread used meanwhile: f's own CPU time, whatever else runs on the
// machine.
func threadCPU(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &before) != nil {
		f()
		return 0
	}
	f()
	if unix.Getrusage(unix.RUSAGE_THREAD, &after) != nil {
		return 0
	}
	return time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
}
