package sigstore

import "strings"

// ParseUserID splits an OpenPGP user ID, "Name (comment) <email>", into its
// name (without the comment) and email; either may be empty.
func ParseUserID(userID string) (name, email string) {
	name = userID
	if i := strings.LastIndex(userID, "<"); i >= 0 && strings.HasSuffix(userID, ">") {
		name, email = strings.TrimSpace(userID[:i]), userID[i+1:len(userID)-1]
	}
	if j := strings.Index(name, " ("); j > 0 && strings.HasSuffix(name, ")") {
		name = name[:j]
	}
	return name, email
}
