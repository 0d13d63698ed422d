package policy

import (
	"fmt"
	"regexp"
	"strings"
)

var releasePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// BuildRecordPath returns where the build record of one signer for one release lives:
// builds/<release>/<FINGERPRINT>.txt.
func BuildRecordPath(release, fingerprint string) string {
	return BuildsDir + "/" + release + "/" + fingerprint + ".txt"
}

// CheckReleaseName refuses a release version that cannot be a path component and a tag name.
func CheckReleaseName(v string) error {
	if !releasePattern.MatchString(v) || strings.Contains(v, "..") || strings.HasSuffix(v, ".lock") {
		return fmt.Errorf("release %q: use letters, digits, '.', '_' and '-' (like 2026.11.0)", v)
	}
	return nil
}
