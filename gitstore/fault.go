package gitstore

import "sync/atomic"

// FaultHook is called with the name of each write step a Repo reaches
// where a crash could leave something half done: "pack-written",
// "objects-written", "lock-taken", "intent-written", "ref-lock-written",
// "ref-moved", "worktree-file-deleted", "worktree-tmp-created",
// "worktree-file-written", "index-lock-written", "index-written" and
// "checkout-done". The crash tests set one that kills or interrupts the
// process at the Nth step of a name; it is called from several goroutines.
type FaultHook func(point string)

var faultHook atomic.Pointer[FaultHook]

// SetFaultHook installs h for the whole process (nil removes it). It is
// for crash tests only: with no hook a write step costs one atomic load.
func SetFaultHook(h FaultHook) {
	if h == nil {
		faultHook.Store(nil)
		return
	}
	faultHook.Store(&h)
}

// faultPoint reports that the named write step was reached.
func faultPoint(name string) {
	if h := faultHook.Load(); h != nil {
		(*h)(name)
	}
}
