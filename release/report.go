package release

import (
	"sort"
	"strings"

	"github.com/tally-sig/tally/sigstore"
)

// Report is the quorum tally of a signatures repository, or of one release or
// some images of it: for every image and platform, which digests were built
// and signed by whom, whether M distinct trusted keys agree, and every problem
// found. Its JSON form is a contract for scripts: extend it, never break it.
type Report struct {
	Threshold   int            `json:"threshold"`
	Release     string         `json:"release,omitempty"`
	Maintainers []sigstore.Key `json:"maintainers"`
	Images      []ImageStatus  `json:"images"`
	Problems    []Problem      `json:"problems"`
}

// ImageStatus is one image (name and tag) of the report.
type ImageStatus struct {
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	Reference string `json:"reference"`
	// Quorum is true when every platform of the image has a digest signed by
	// at least Threshold distinct trusted keys.
	Quorum bool `json:"quorum"`
	// Divergent is true when maintainers built different digests for the same
	// platform: the alarm that one build environment differs.
	Divergent bool           `json:"divergent"`
	Digests   []DigestStatus `json:"digests"`
	// Builds is the matrix platform x maintainer: what each one built.
	Builds []BuildCell `json:"builds"`
}

// DigestStatus is one per-platform manifest digest of an image.
type DigestStatus struct {
	Digest   string `json:"digest"`
	Platform string `json:"platform,omitempty"`
	// Quorum is true when Count reaches the threshold.
	Quorum bool `json:"quorum"`
	// Count is the number of distinct trusted keys whose signature counts.
	Count   int      `json:"count"`
	Signers []Signer `json:"signers"`
	// BuiltBy lists the fingerprints whose build records name this digest.
	BuiltBy []string `json:"built_by,omitempty"`
}

// Signer is one signature file of a digest and what it counts for.
type Signer struct {
	Fingerprint string `json:"fingerprint"` // primary key, uppercase; the issuer when unknown
	Name        string `json:"name"`
	Trusted     bool   `json:"trusted"`
	Counted     bool   `json:"counted"`
	Reason      string `json:"reason,omitempty"` // why it does not count
	Path        string `json:"path"`
}

// Cell states of the build matrix.
const (
	CellMatch     = "match"     // built (or signed) the digest the others agree on
	CellDivergent = "divergent" // built a different digest for the same image and platform
	CellMissing   = "missing"   // no build and no signature for this platform
)

// BuildCell is what one maintainer built for one platform of an image.
type BuildCell struct {
	Platform    string `json:"platform"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	Digest      string `json:"digest,omitempty"`
	State       string `json:"state"`
}

// Problem is something wrong with a file of the repository.
type Problem struct {
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"` // "invalid" or "warning"
	Error    string `json:"error"`
}

// Invalid reports whether any file is invalid: it does not parse or verify,
// or claims another digest or image than the place it sits in.
func (r *Report) Invalid() bool {
	for _, p := range r.Problems {
		if p.Severity == string(sigstore.SeverityInvalid) {
			return true
		}
	}
	return false
}

// QuorumMet reports whether there is at least one image and every image meets
// quorum without divergent builds.
func (r *Report) QuorumMet() bool {
	if len(r.Images) == 0 {
		return false
	}
	for _, img := range r.Images {
		if !img.Quorum || img.Divergent {
			return false
		}
	}
	return true
}

// Scope narrows a report to one release and/or some image names.
type Scope struct {
	Release string   // "" = every release and every signature
	Names   []string // nil = every image
}

// observation is one piece of evidence about an image digest.
type observation struct {
	name, tag, platform, digest string
	builder                     string // fingerprint from a build record, "" for a signature
}

// Tally counts the quorum of the evaluated repository within scope.
func (ev *Evaluation) Tally(scope Scope) *Report {
	r := &Report{Threshold: ev.Threshold, Release: scope.Release, Maintainers: ev.Keys.Keys(),
		Images: []ImageStatus{}, Problems: []Problem{}}
	wantName := func(n string) bool {
		if len(scope.Names) == 0 {
			return true
		}
		for _, x := range scope.Names {
			if x == n {
				return true
			}
		}
		return false
	}

	// Evidence from build records.
	var obs []observation
	for _, rel := range ev.Releases() {
		if scope.Release != "" && rel != scope.Release {
			continue
		}
		fprs := make([]string, 0, len(ev.Records[rel]))
		for f := range ev.Records[rel] {
			fprs = append(fprs, f)
		}
		sort.Strings(fprs)
		for _, fpr := range fprs {
			for k, d := range ev.Records[rel][fpr].Latest() {
				if wantName(k.Name) {
					obs = append(obs, observation{k.Name, k.Tag, k.Platform, d, fpr})
				}
			}
		}
	}
	type imageKey struct{ name, tag string }
	byImage := map[imageKey][]observation{}
	nameDigest := map[string]bool{} // name@digest with any observation
	recorded := map[string]bool{}   // name@digest seen in build records
	add := func(o observation) {
		k := imageKey{o.name, o.tag}
		byImage[k] = append(byImage[k], o)
		nameDigest[o.name+"@"+o.digest] = true
	}
	for _, o := range obs {
		add(o)
		recorded[o.name+"@"+o.digest] = true
	}

	// Evidence from signatures: files grouped by directory.
	dirs := map[string][]int{}
	for i, f := range ev.Files {
		if f.Name == "" {
			continue
		}
		d := f.Verdict.Location.Digest
		dirs[f.Name+"@"+d] = append(dirs[f.Name+"@"+d], i)
		if !wantName(f.Name) {
			continue
		}
		tag := tagOf(f.Verdict.Signature.Payload.Reference)
		if f.Verdict.Problem != "" || tag == "" {
			continue
		}
		if _, known := byImage[imageKey{f.Name, tag}]; scope.Release != "" && !known && !recorded[f.Name+"@"+d] {
			continue // another release's image
		}
		add(observation{name: f.Name, tag: tag, digest: d})
	}
	// Directories with no readable payload still belong to an image of their name.
	inScope := map[string]bool{}
	for key, idx := range dirs {
		f := ev.Files[idx[0]]
		if !wantName(f.Name) || (scope.Release != "" && !nameDigest[key]) {
			continue
		}
		inScope[key] = true
		if !nameDigest[key] {
			add(observation{name: f.Name, digest: f.Verdict.Location.Digest})
		}
	}
	for key := range nameDigest {
		inScope[key] = true
	}

	keys := make([]imageKey, 0, len(byImage))
	for k := range byImage {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].tag < keys[j].tag
	})
	for _, k := range keys {
		r.Images = append(r.Images, ev.imageStatus(k.name, k.tag, byImage[k], dirs))
	}

	// Problems of the files in scope (all files when the scope is everything).
	for _, f := range ev.Files {
		if f.Verdict.Problem == "" {
			continue
		}
		if f.Name != "" && (scope.Release != "" || len(scope.Names) > 0) && !inScope[f.Name+"@"+f.Verdict.Location.Digest] {
			continue
		}
		if f.Name == "" && (scope.Release != "" || len(scope.Names) > 0) {
			// A malformed path belongs to no image; report it only for the whole repository.
			continue
		}
		r.Problems = append(r.Problems, Problem{Path: f.Path, Kind: string(f.Verdict.Problem),
			Severity: string(f.Verdict.Severity), Error: f.Verdict.Message})
	}
	for _, p := range ev.RecordProblems {
		if scope.Release == "" || strings.HasPrefix(p.Path, BuildsDir+"/"+scope.Release+"/") {
			r.Problems = append(r.Problems, p)
		}
	}
	return r
}

// tagOf returns the tag of a docker reference "repo:tag" ("" when none).
func tagOf(ref string) string {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ""
	}
	return ref[i+1:]
}

// imageStatus builds the status of one image from its evidence.
func (ev *Evaluation) imageStatus(name, tag string, obs []observation, dirs map[string][]int) ImageStatus {
	img := ImageStatus{Name: name, Tag: tag, Reference: ev.Policy.Reference(name, tag), Digests: []DigestStatus{}, Builds: []BuildCell{}}
	if tag == "" {
		img.Reference = ev.Policy.Repository(name)
	}
	digests := map[string]*DigestStatus{}
	var order []string
	built := map[string]map[string]string{} // platform -> fingerprint -> digest
	for _, o := range obs {
		d, ok := digests[o.digest]
		if !ok {
			d = &DigestStatus{Digest: o.digest, Signers: []Signer{}}
			digests[o.digest] = d
			order = append(order, o.digest)
		}
		if o.platform != "" && o.platform != "unknown" && d.Platform == "" {
			d.Platform = o.platform
		}
		if o.builder != "" {
			d.BuiltBy = appendUnique(d.BuiltBy, o.builder)
			if built[o.platform] == nil {
				built[o.platform] = map[string]string{}
			}
			built[o.platform][o.builder] = o.digest
		}
	}
	sort.Strings(order)
	for _, dg := range order {
		d := digests[dg]
		for _, i := range dirs[name+"@"+dg] {
			f := ev.Files[i]
			s := Signer{Fingerprint: f.Verdict.Signature.Signer, Path: f.Path, Counted: f.Counts, Reason: f.Reason}
			if s.Fingerprint == "" {
				s.Fingerprint = f.Verdict.Signature.Issuer
			}
			if k, ok := ev.Keys.Key(f.Verdict.Signature.Signer); ok {
				s.Name, s.Trusted = k.Name, true
			}
			if f.Counts {
				d.Count++
			}
			d.Signers = append(d.Signers, s)
		}
		d.Quorum = d.Count >= ev.Threshold
		img.Digests = append(img.Digests, *d)
	}

	// Slots: one per known platform, one per digest of unknown platform.
	slots := map[string][]*DigestStatus{}
	for i := range img.Digests {
		d := &img.Digests[i]
		slot := d.Platform
		if slot == "" {
			slot = "digest:" + d.Digest
		}
		slots[slot] = append(slots[slot], d)
	}
	img.Quorum = len(slots) > 0
	for _, ds := range slots {
		ok := false
		for _, d := range ds {
			ok = ok || d.Quorum
		}
		img.Quorum = img.Quorum && ok
		if len(ds) > 1 {
			img.Divergent = true
		}
	}

	// The matrix: every maintainer and every builder, for every known platform.
	people := map[string]string{}
	for _, k := range ev.Keys.Keys() {
		people[k.Fingerprint] = k.Name
	}
	for _, byFpr := range built {
		for f := range byFpr {
			if _, ok := people[f]; !ok {
				people[f] = "(not a maintainer)"
			}
		}
	}
	fprs := make([]string, 0, len(people))
	for f := range people {
		fprs = append(fprs, f)
	}
	sort.Strings(fprs)
	platforms := make([]string, 0, len(slots))
	for s := range slots {
		if !strings.HasPrefix(s, "digest:") {
			platforms = append(platforms, s)
		}
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		agreed := agreedDigest(slots[p])
		for _, f := range fprs {
			cell := BuildCell{Platform: p, Fingerprint: f, Name: people[f], State: CellMissing}
			cell.Digest = built[p][f]
			if cell.Digest == "" {
				cell.Digest = signedIn(slots[p], f)
			}
			switch {
			case cell.Digest == "":
			case len(slots[p]) == 1 || cell.Digest == agreed:
				cell.State = CellMatch
			default:
				cell.State = CellDivergent
			}
			img.Builds = append(img.Builds, cell)
		}
	}
	return img
}

// agreedDigest is the digest most trusted keys signed, when one digest leads.
func agreedDigest(ds []*DigestStatus) string {
	best, bestCount, tie := "", -1, false
	for _, d := range ds {
		switch {
		case d.Count > bestCount:
			best, bestCount, tie = d.Digest, d.Count, false
		case d.Count == bestCount:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// signedIn returns the digest among ds that fingerprint f signed, if any.
func signedIn(ds []*DigestStatus, f string) string {
	for _, d := range ds {
		for _, s := range d.Signers {
			if s.Fingerprint == f && s.Counted {
				return d.Digest
			}
		}
	}
	return ""
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
