// Package fault is tally's fault-injection seam for crash tests. The
// library calls Point at each step where it writes something a crash could
// leave half done (a lock taken, objects stored, the intent record written,
// the branch moved, a working-tree file written, the index written). In a
// normal run no hook is set and Point costs one atomic load; the crash
// harness (cmd/tally's tests) sets a hook that kills or interrupts the
// process at the Nth point of a given name.
package fault

import "sync/atomic"

// Hook is called with the name of each point reached.
type Hook func(point string)

var hook atomic.Pointer[Hook]

// Set installs h (nil removes the hook). Only tests call it.
func Set(h Hook) {
	if h == nil {
		hook.Store(nil)
		return
	}
	hook.Store(&h)
}

// Point reports that the named write step was reached.
func Point(name string) {
	if h := hook.Load(); h != nil {
		(*h)(name)
	}
}
