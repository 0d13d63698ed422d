package sigstore

import (
	"fmt"
	"strconv"
	"strings"
)

// maxSignatureNumber bounds N in signature-N. Readers count up from 1, so a
// larger number could never be reached.
const maxSignatureNumber = 1<<31 - 1

// Location is where one signature file lives in a lookaside store:
// "<Repository>@sha256=<hex>/signature-<Number>".
type Location struct {
	// Repository is the repository path without a registry host,
	// for example "stagex/core-gcc".
	Repository string `json:"repository"`
	// Digest is the manifest digest, "sha256:" + 64 lowercase hex.
	Digest string `json:"digest"`
	// Number is N in signature-N, from 1; 0 when the Location names only a
	// directory (see ParseLocationDir).
	Number int `json:"number"`
}

// LocationError reports a lookaside path that is not a valid Location.
type LocationError struct {
	Path   string // the path as given
	Reason string // what is wrong with it
}

// Error implements error.
func (e *LocationError) Error() string {
	return fmt.Sprintf("malformed lookaside path %q: %s", e.Path, e.Reason)
}

// Dir returns the signature directory, "<Repository>@sha256=<hex>".
func (l Location) Dir() string {
	return l.Repository + "@" + strings.Replace(l.Digest, ":", "=", 1)
}

// Path returns the path of the signature file,
// "<Repository>@sha256=<hex>/signature-<Number>".
func (l Location) Path() string {
	return l.Dir() + "/signature-" + strconv.Itoa(l.Number)
}

// String returns Path, or Dir when Number is 0.
func (l Location) String() string {
	if l.Number == 0 {
		return l.Dir()
	}
	return l.Path()
}

// Validate checks every part of l as ParseLocation would; a Number of 0 is
// accepted (a directory).
func (l Location) Validate() error {
	if reason := checkRepositoryPath(l.Repository); reason != "" {
		return &LocationError{Path: l.String(), Reason: reason}
	}
	if err := validateDigest(l.Digest); err != nil {
		return &LocationError{Path: l.String(), Reason: err.Error()}
	}
	if l.Number < 0 || l.Number > maxSignatureNumber {
		return &LocationError{Path: l.String(), Reason: fmt.Sprintf("signature number %d is out of range", l.Number)}
	}
	return nil
}

// ParseLocation parses the path of a signature file in a lookaside store,
// "<repository>@sha256=<64 lowercase hex>/signature-<N>" with N ≥ 1 written
// without leading zeros. The repository is one or more lowercase docker path
// components ("stagex/core-gcc") and never starts with a registry host. The
// path is relative, with no empty, "." or ".." component. Errors are
// *LocationError values saying what is wrong.
func ParseLocation(path string) (Location, error) {
	dir, file, ok := cutLast(path, "/")
	if !ok {
		return Location{}, &LocationError{Path: path, Reason: "no signature directory: want <repository>@sha256=<hex>/signature-<N>"}
	}
	if file == "" {
		return Location{}, &LocationError{Path: path, Reason: "path ends with \"/\": want <repository>@sha256=<hex>/signature-<N>"}
	}
	loc, err := parseDir(path, dir)
	if err != nil {
		return Location{}, err
	}
	num, ok := strings.CutPrefix(file, "signature-")
	if !ok {
		return Location{}, &LocationError{Path: path, Reason: fmt.Sprintf("file name %q does not start with \"signature-\"", file)}
	}
	n, reason := parseSignatureNumber(num)
	if reason != "" {
		return Location{}, &LocationError{Path: path, Reason: reason}
	}
	loc.Number = n
	return loc, nil
}

// ParseLocationDir parses a signature directory path,
// "<repository>@sha256=<64 lowercase hex>", with the rules of ParseLocation.
// The returned Location has Number 0.
func ParseLocationDir(dir string) (Location, error) {
	return parseDir(dir, dir)
}

func parseDir(path, dir string) (Location, error) {
	repo, hex, ok := cutLast(dir, "@")
	if !ok {
		return Location{}, &LocationError{Path: path, Reason: "no \"@sha256=\" between repository and digest"}
	}
	if reason := checkRepositoryPath(repo); reason != "" {
		return Location{}, &LocationError{Path: path, Reason: reason}
	}
	algo, encoded, ok := strings.Cut(hex, "=")
	if !ok {
		return Location{}, &LocationError{Path: path, Reason: fmt.Sprintf("digest %q is not written as sha256=<hex>", hex)}
	}
	if algo != "sha256" {
		return Location{}, &LocationError{Path: path, Reason: fmt.Sprintf("digest algorithm %q is not sha256", algo)}
	}
	if strings.Contains(encoded, "/") {
		return Location{}, &LocationError{Path: path, Reason: "extra path components after the digest: signature files sit directly in the digest directory"}
	}
	digest := "sha256:" + encoded
	if !isSHA256Digest(digest) {
		return Location{}, &LocationError{Path: path, Reason: fmt.Sprintf("digest %q is not 64 lowercase hex digits", encoded)}
	}
	return Location{Repository: repo, Digest: digest}, nil
}

// checkRepositoryPath returns why repo is not a valid registry-less
// repository path, or "" when it is.
func checkRepositoryPath(repo string) string {
	if repo == "" {
		return "empty repository"
	}
	if len(repo) > nameTotalLengthMax {
		return fmt.Sprintf("repository is longer than %d characters", nameTotalLengthMax)
	}
	components := strings.Split(repo, "/")
	for i, c := range components {
		switch {
		case c == "":
			if i == 0 {
				return "repository starts with \"/\": the path must be relative"
			}
			return "repository has an empty path component"
		case c == "." || c == "..":
			return fmt.Sprintf("repository has a %q path component", c)
		case !isPathComponent(c):
			return fmt.Sprintf("repository component %q is not lowercase letters and digits joined by \".\", \"_\", \"__\" or \"-\"", c)
		}
	}
	if first := components[0]; len(components) > 1 && (strings.Contains(first, ".") || first == "localhost") {
		return fmt.Sprintf("repository starts with %q, which clients read as a registry host; lookaside paths leave the host out", first)
	}
	return ""
}

// parseSignatureNumber parses N of signature-N, or says why it cannot.
func parseSignatureNumber(s string) (int, string) {
	if s == "" {
		return 0, "no number after \"signature-\""
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Sprintf("signature number %q is not a decimal number", s)
		}
	}
	if s[0] == '0' {
		if s == "0" {
			return 0, "signature numbers start at 1"
		}
		return 0, fmt.Sprintf("signature number %q has a leading zero", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxSignatureNumber {
		return 0, fmt.Sprintf("signature number %q is too large", s)
	}
	return n, ""
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// isPathComponent reports whether c matches pathComponentRegexp: runs of
// lowercase letters and digits joined by ".", "_", "__" or one or more "-",
// starting and ending with a letter or digit. It is the check on every
// signature path, so it avoids the regexp machinery.
func isPathComponent(c string) bool {
	if c == "" {
		return false
	}
	for i := 0; i < len(c); {
		if isLowerAlnum(c[i]) {
			i++
			continue
		}
		if i == 0 {
			return false // a separator must follow a letter or digit
		}
		// A separator: ".", "_", "__" or "-"+, then a letter or digit.
		j := i + 1
		switch c[i] {
		case '.':
		case '_':
			if j < len(c) && c[j] == '_' {
				j++
			}
		case '-':
			for j < len(c) && c[j] == '-' {
				j++
			}
		default:
			return false
		}
		if j == len(c) || !isLowerAlnum(c[j]) {
			return false
		}
		i = j
	}
	return true
}

func isLowerAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9'
}
