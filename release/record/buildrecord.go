package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBadRecord means a build record does not follow the documented format.
var ErrBadRecord = errors.New("invalid build record")

// RecordHeader opens every build record file.
const RecordHeader = "# tally build record: a \"run\" line per tally sign, then one line per image platform it built"

// Run describes one tally sign run: when, from which source commit, on what machine.
type Run struct {
	Time      time.Time // when the run was signed (UTC, seconds)
	Source    string    // git commit of the source tree the build came from, or "unknown"
	Dirty     string    // "yes", "no" or "unknown": whether the source tree had uncommitted changes
	Platform  string    // the builder's GOOS/GOARCH
	CPUVendor string    // e.g. "GenuineIntel", "AuthenticAMD", or "unknown"
	CPUModel  string    // e.g. "AMD EPYC 7B13", or "unknown"
	Tally     string    // tally version
}

// Built is one image platform a maintainer built and signed.
type Built struct {
	Name     string // image name (the layout directory, e.g. "core-gcc")
	Tag      string // image tag (the package version)
	Platform string // "linux/amd64", or "unknown"
	Digest   string // "sha256:<hex>" of the per-platform manifest
	Run      int    // index into BuildRecord.Runs of the run that recorded it
}

// BuildRecord is what one maintainer recorded building for one release: the
// runs, and what each run built. It is kept as diff-friendly text; later runs
// only append lines.
type BuildRecord struct {
	Runs  []Run
	Built []Built
}

var (
	DigestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tokenPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+/:-]*$`)
)

// Latest returns, for each image name, tag and platform, the digest recorded last.
func (r BuildRecord) Latest() map[BuiltKey]string {
	out := make(map[BuiltKey]string, len(r.Built))
	for _, b := range r.Built {
		out[BuiltKey{b.Name, b.Tag, b.Platform}] = b.Digest
	}
	return out
}

// BuiltKey names one image platform: name, tag and platform.
type BuiltKey struct{ Name, Tag, Platform string }

// Has reports whether the record already lists this exact build.
func (r BuildRecord) Has(b Built) bool {
	for _, x := range r.Built {
		if x.Name == b.Name && x.Tag == b.Tag && x.Platform == b.Platform && x.Digest == b.Digest {
			return true
		}
	}
	return false
}

// Append adds a run and the builds it made that the record does not list yet.
// It returns how many builds were new; a run with none is not recorded.
func (r *BuildRecord) Append(run Run, built []Built) int {
	var fresh []Built
	for _, b := range built {
		if !r.Has(b) {
			fresh = append(fresh, b)
		}
	}
	if len(fresh) == 0 {
		return 0
	}
	sort.SliceStable(fresh, func(a, c int) bool {
		if fresh[a].Name != fresh[c].Name {
			return fresh[a].Name < fresh[c].Name
		}
		return fresh[a].Platform < fresh[c].Platform
	})
	r.Runs = append(r.Runs, run)
	for _, b := range fresh {
		b.Run = len(r.Runs) - 1
		r.Built = append(r.Built, b)
	}
	return len(fresh)
}

// Marshal encodes the record. Lines of earlier runs come first and keep their
// bytes, so appending a run only adds lines at the end of the file.
func (r BuildRecord) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(RecordHeader + "\n")
	for i, run := range r.Runs {
		fmt.Fprintf(&b, "run time=%s source=%s dirty=%s platform=%s cpu-vendor=%s cpu-model=%s tally=%s\n",
			run.Time.UTC().Format(time.RFC3339), field(run.Source), field(run.Dirty), field(run.Platform),
			field(run.CPUVendor), field(run.CPUModel), field(run.Tally))
		for _, x := range r.Built {
			if x.Run != i {
				continue
			}
			fmt.Fprintf(&b, "%s %s %s %s\n", strings.TrimPrefix(x.Digest, "sha256:"), x.Name, x.Tag, x.Platform)
		}
	}
	return b.Bytes()
}

// field quotes a run field when it holds spaces or is empty.
func field(s string) string {
	if s == "" {
		return "unknown"
	}
	if isToken(s) {
		return s
	}
	return strconv.Quote(s)
}

// MaxBuildRecordSize bounds a build record: about 130,000 image lines, a
// hundred runs of a 500-image distribution on two platforms. A larger one is
// refused (ErrBadRecord) before it is parsed.
const MaxBuildRecordSize = 16 << 20

// ParseBuildRecord reads a build record strictly; a record is input from other
// maintainers, so anything outside the format is an error naming the line.
func ParseBuildRecord(data []byte) (BuildRecord, error) {
	var r BuildRecord
	if len(data) > MaxBuildRecordSize {
		return BuildRecord{}, fmt.Errorf("%w: %d bytes, more than the %d tally reads", ErrBadRecord, len(data), MaxBuildRecordSize)
	}
	if i := bytes.IndexByte(data, '\r'); i >= 0 {
		return BuildRecord{}, fmt.Errorf("%w: carriage return at byte %d: lines end with \\n only", ErrBadRecord, i)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			if line != RecordHeader {
				return BuildRecord{}, fmt.Errorf("%w: line 1: missing the header %q", ErrBadRecord, RecordHeader)
			}
			continue
		}
		if strings.HasPrefix(line, "run ") {
			run, err := parseRun(line[len("run "):])
			if err != nil {
				return BuildRecord{}, fmt.Errorf("%w: line %d: %v", ErrBadRecord, n, err)
			}
			r.Runs = append(r.Runs, run)
			continue
		}
		if len(r.Runs) == 0 {
			return BuildRecord{}, fmt.Errorf("%w: line %d: an image line before any run line", ErrBadRecord, n)
		}
		b, err := parseBuilt(line)
		if err != nil {
			return BuildRecord{}, fmt.Errorf("%w: line %d: %v", ErrBadRecord, n, err)
		}
		b.Run = len(r.Runs) - 1
		r.Built = append(r.Built, b)
	}
	if err := sc.Err(); err != nil {
		return BuildRecord{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if n == 0 {
		return BuildRecord{}, fmt.Errorf("%w: empty file", ErrBadRecord)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return BuildRecord{}, fmt.Errorf("%w: the last line has no newline", ErrBadRecord)
	}
	return r, nil
}

// isDigest reports whether d matches digestPattern, "sha256:" and 64
// lowercase hex digits, without the regexp machinery (it runs on every
// line of every build record).
func isDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isToken reports whether s matches tokenPattern: a letter or digit, then
// letters, digits and "._+/:-".
func isToken(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case isAlnum(c), c == '.', c == '_', c == '+', c == '/', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func parseBuilt(line string) (Built, error) {
	f := strings.Split(line, " ")
	if len(f) != 4 {
		return Built{}, fmt.Errorf("want \"<64-hex> <name> <tag> <platform>\", got %d fields", len(f))
	}
	b := Built{Digest: "sha256:" + f[0], Name: f[1], Tag: f[2], Platform: f[3]}
	if !isDigest(b.Digest) {
		return Built{}, fmt.Errorf("digest %q is not 64 lowercase hex digits", f[0])
	}
	for _, s := range []string{b.Name, b.Tag, b.Platform} {
		if !isToken(s) {
			return Built{}, fmt.Errorf("field %q has characters outside [A-Za-z0-9._+/:-]", s)
		}
	}
	return b, nil
}

func parseRun(rest string) (Run, error) {
	fields, err := splitFields(rest)
	if err != nil {
		return Run{}, err
	}
	want := []string{"time", "source", "dirty", "platform", "cpu-vendor", "cpu-model", "tally"}
	if len(fields) != len(want) {
		return Run{}, fmt.Errorf("a run line has %d fields, want %d (%s)", len(fields), len(want), strings.Join(want, " "))
	}
	vals := make(map[string]string, len(want))
	for i, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k != want[i] {
			return Run{}, fmt.Errorf("field %d of a run line must be %s=…", i+1, want[i])
		}
		if strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			if err != nil {
				return Run{}, fmt.Errorf("field %s: bad quoting", k)
			}
			if u == "" || isToken(u) || !strconv.CanBackquote(u) {
				return Run{}, fmt.Errorf("field %s: quoted needlessly or holds control characters", k)
			}
			v = u
		} else if !isToken(v) {
			return Run{}, fmt.Errorf("field %s: %q has characters outside [A-Za-z0-9._+/:-]", k, v)
		}
		vals[k] = v
	}
	t, err := time.Parse(time.RFC3339, vals["time"])
	if err != nil || t.Format(time.RFC3339) != vals["time"] || t.Location() != time.UTC {
		return Run{}, fmt.Errorf("time %q is not RFC 3339 UTC (like 2026-11-28T18:40:00Z)", vals["time"])
	}
	if d := vals["dirty"]; d != "yes" && d != "no" && d != "unknown" {
		return Run{}, fmt.Errorf("dirty=%q: want yes, no or unknown", d)
	}
	return Run{Time: t, Source: vals["source"], Dirty: vals["dirty"], Platform: vals["platform"],
		CPUVendor: vals["cpu-vendor"], CPUModel: vals["cpu-model"], Tally: vals["tally"]}, nil
}

// splitFields splits on spaces, keeping Go-quoted strings whole.
func splitFields(s string) ([]string, error) {
	var out []string
	for len(s) > 0 {
		if s[0] == ' ' {
			return nil, errors.New("double or leading space")
		}
		end := strings.IndexByte(s, ' ')
		if i := strings.Index(s, `="`); i >= 0 && (end < 0 || i < end) {
			// A quoted value: find its closing quote.
			j := i + 2
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '"' {
					break
				}
			}
			if j >= len(s) {
				return nil, errors.New("unterminated quoted value")
			}
			end = j + 1
			if end < len(s) && s[end] != ' ' {
				return nil, errors.New("text after a closing quote")
			}
		}
		if end < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:end])
		s = s[end:]
		if len(s) > 0 {
			s = s[1:]
			if s == "" {
				return nil, errors.New("trailing space")
			}
		}
	}
	return out, nil
}
