package policy

import (
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tally-sig/tally/sigstore"
)

// Author turns a key's user ID ("Name (comment) <email>") into the git
// identity of the commits and tags it signs: the name and email of the user
// ID ("tally" when it has no name), at when. It is the one such helper; the
// verbs of release and release/merge use it.
func Author(userID string, when time.Time) object.Signature {
	name, email := sigstore.ParseUserID(userID)
	if name == "" {
		name = "tally"
	}
	return object.Signature{Name: name, Email: email, When: when}
}
