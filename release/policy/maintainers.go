package policy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrBadMaintainers means a MAINTAINERS file cannot be read as the list of
// maintainer keys.
var ErrBadMaintainers = errors.New("invalid MAINTAINERS file")

// MaxMaintainersSize bounds a MAINTAINERS file: a line or two per key of a
// few dozen maintainers.
const MaxMaintainersSize = 256 << 10

// Maintainer is one key listed in a MAINTAINERS file.
type Maintainer struct {
	Person      string `json:"person"`      // <person> of [keys.<person>.<label>]
	Label       string `json:"label"`       // <label>
	Fingerprint string `json:"fingerprint"` // primary-key fingerprint, uppercase hex
}

// ParseMaintainers reads StageX's MAINTAINERS file (TOML): every table
// [keys.<person>.<label>] names one maintainer key by its primary
// fingerprint in "id". Other tables and keys are StageX's and are ignored;
// a key table without an id, an id that is not a v4 (40 hex digits) or v6
// (64) fingerprint, and a fingerprint listed twice are errors. The result is
// in fingerprint order.
func ParseMaintainers(data []byte) ([]Maintainer, error) {
	if len(data) > MaxMaintainersSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d it may have", ErrBadMaintainers, len(data), MaxMaintainersSize)
	}
	var doc struct {
		Keys map[string]map[string]map[string]any `toml:"keys"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMaintainers, err)
	}
	var out []Maintainer
	seen := map[string]string{}
	for person, labels := range doc.Keys {
		for label, fields := range labels {
			where := fmt.Sprintf("[keys.%s.%s]", quoteKey(person), quoteKey(label))
			raw, ok := fields["id"]
			if !ok {
				return nil, fmt.Errorf("%w: %s has no id", ErrBadMaintainers, where)
			}
			id, ok := raw.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s: id is not a string", ErrBadMaintainers, where)
			}
			fpr := strings.ToUpper(strings.ReplaceAll(id, " ", ""))
			if !isFingerprint(fpr) {
				return nil, fmt.Errorf("%w: %s: id %q is not a primary-key fingerprint (40 or 64 hex digits)", ErrBadMaintainers, where, id)
			}
			if prev, dup := seen[fpr]; dup {
				first, second := prev, where
				if second < first {
					first, second = second, first
				}
				return nil, fmt.Errorf("%w: %s is listed twice (%s and %s)", ErrBadMaintainers, fpr, first, second)
			}
			seen[fpr] = where
			out = append(out, Maintainer{Person: person, Label: label, Fingerprint: fpr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no [keys.<person>.<label>] table with an id", ErrBadMaintainers)
	}
	slices.SortFunc(out, func(a, b Maintainer) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out, nil
}

func isFingerprint(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// quoteKey writes a TOML key as it would appear in a table header.
func quoteKey(k string) string {
	for _, c := range k {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Sprintf("%q", k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}
