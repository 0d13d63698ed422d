package policy

import (
	"testing"
	"time"
)

func TestAuthor(t *testing.T) {
	when := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ userID, name, email string }{
		{"Alice Maintainer (laptop) <alice@example.invalid>", "Alice Maintainer", "alice@example.invalid"},
		{"Bob <bob@example.invalid>", "Bob", "bob@example.invalid"},
		{"<ci@example.invalid>", "tally", "ci@example.invalid"},
		{"", "tally", ""},
		{"just a name", "just a name", ""},
	} {
		got := Author(tt.userID, when)
		if got.Name != tt.name || got.Email != tt.email || !got.When.Equal(when) {
			t.Errorf("Author(%q) = %q <%q> at %v, want %q <%q> at %v", tt.userID, got.Name, got.Email, got.When, tt.name, tt.email, when)
		}
	}
}
