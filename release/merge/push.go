package merge

import "errors"

// ErrNoUpstream means the branch has no upstream to push to or sync with.
var ErrNoUpstream = errors.New("the branch has no upstream")
