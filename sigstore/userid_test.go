package sigstore

import "testing"

func TestParseUserID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, name, email string }{
		{"Alice Builder (test) <alice@example.org>", "Alice Builder", "alice@example.org"},
		{"Alice Builder <alice@example.org>", "Alice Builder", "alice@example.org"},
		{"Alice Builder", "Alice Builder", ""},
		{"<alice@example.org>", "", "alice@example.org"},
		{"(only a comment)", "(only a comment)", ""},
		{"", "", ""},
		{"Bob <bob", "Bob <bob", ""},
	} {
		name, email := ParseUserID(tt.in)
		if name != tt.name || email != tt.email {
			t.Errorf("ParseUserID(%q) = %q, %q; want %q, %q", tt.in, name, email, tt.name, tt.email)
		}
	}
}
