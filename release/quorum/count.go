package quorum

import (
	"cmp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// Tally counts the quorum of the evaluated repository within scope, which
// must lie within the scope Evaluate judged.
//
// Build records define the images of a release: NAME:TAG and, per platform,
// the digest each maintainer built. For each (image, digest) it counts the
// distinct trusted primary keys with a signature that counts (Evaluate) and
// names this image's tag. Signed digests that no build record in scope
// lists form images of their own (Release ""), one slot per digest, when the
// scope is not one release.
func (ev *Evaluation) Tally(scope Scope) *Report {
	t := &tally{ev: ev, scope: scope, keys: ev.Keys.Keys(), keyByFpr: map[string]sigstore.Key{}}
	for _, k := range t.keys {
		t.keyByFpr[k.Fingerprint] = k
	}
	t.readRecords()
	t.readFiles()
	t.fprs = t.columns()
	r := &Report{Threshold: ev.Threshold, Release: scope.Release, Commit: ev.Commit.String(),
		Maintainers: t.keys, Images: make([]ImageStatus, 0, len(t.images)), Problems: t.problems, Verified: ev.Verified, StrictClients: ev.StrictClients}
	keys := make([]imageKey, 0, len(t.images))
	for k := range t.images {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b imageKey) int {
		return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.tag, b.tag), strings.Compare(a.release, b.release))
	})
	// Each image's status reads the tally and writes only that image's
	// evidence: the images are worked out in parallel parts.
	if slices.ContainsFunc(keys, func(k imageKey) bool { return k.release == "" }) {
		t.recordedTags = t.allRecordedTags()
	}
	r.Images = r.Images[:len(keys)]
	parts := min(runtime.GOMAXPROCS(0), 1+len(keys)/256)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			for i := len(keys) * p / parts; i < len(keys)*(p+1)/parts; i++ {
				r.Images[i] = t.status(t.images[keys[i]])
			}
		})
	}
	wg.Wait()
	for _, p := range ev.RecordProblems {
		if scope.Release == "" || strings.HasPrefix(p.Path, policy.BuildsDir+"/"+scope.Release+"/") {
			r.Problems = append(r.Problems, p)
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return r
}

// maxAllColumns is the largest trust root whose every key gets a column of
// the build matrix; of a larger one (a consumer's --keyring of thousands of
// keys) only the keys that signed or built something in scope do.
const maxAllColumns = 64

// columns are the keys of the matrix, sorted: every key of the trust root,
// or of a trust root larger than maxAllColumns only those that signed or
// built something in scope, so that the report grows with the signers
// present, not with the size of the keyring.
func (t *tally) columns() []string {
	var out []string
	if len(t.keys) <= maxAllColumns {
		for _, k := range t.keys {
			out = append(out, k.Fingerprint)
		}
		slices.Sort(out)
		return out
	}
	present := map[string]bool{}
	for _, a := range t.images {
		for _, b := range a.builds {
			present[b.fpr] = true
		}
		for _, d := range a.rows {
			for _, s := range d.Signers {
				present[s.Fingerprint] = true
			}
		}
	}
	for f := range present {
		if _, ok := t.keyByFpr[f]; ok {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

type imageKey struct{ release, name, tag string }

// imageAcc gathers the evidence about one image.
type imageAcc struct {
	key       imageKey
	legacy    bool      // only legacy signatures name it
	builds    []builtAt // one per platform and builder
	platforms []string  // of builds, each once
	rows      []*DigestStatus
}

// builtAt is what one builder recorded for one platform of an image.
type builtAt struct {
	platform, fpr, digest string
	run                   *record.Run
}

// built returns what fpr recorded for platform.
func (a *imageAcc) built(platform, fpr string) (builtAt, bool) {
	for _, b := range a.builds {
		if b.platform == platform && b.fpr == fpr {
			return b, true
		}
	}
	return builtAt{}, false
}

func (a *imageAcc) row(digest, platform string) *DigestStatus {
	for _, d := range a.rows {
		if d.Digest == digest && d.Platform == platform {
			return d
		}
	}
	d := &DigestStatus{Digest: digest, Platform: platform, Signers: []Signer{}}
	a.rows = append(a.rows, d)
	return d
}

type tally struct {
	ev       *Evaluation
	scope    Scope
	keys     []sigstore.Key
	keyByFpr map[string]sigstore.Key
	fprs     []string // of keys, sorted
	images   map[imageKey]*imageAcc
	// recordedAt lists, by image name and digest, the images whose build
	// records list that digest.
	recordedAt map[nameDigest][]*imageAcc
	// recordedTags is every name:tag a build record of any release lists,
	// made when an image without records needs it.
	recordedTags map[nameTag]bool
	runs         map[*record.Run]string // describeRun's strings, made by readRecords
	problems     []Problem
}

type nameDigest struct{ name, digest string }

type nameTag struct{ name, tag string }

func (t *tally) image(k imageKey) *imageAcc {
	a := t.images[k]
	if a == nil {
		a = &imageAcc{key: k}
		t.images[k] = a
	}
	return a
}

// readRecords files the builds of every record in scope: the digest each
// maintainer recorded last for each image and platform.
func (t *tally) readRecords() {
	releases := t.ev.Releases()
	if t.scope.Release != "" {
		releases = slices.DeleteFunc(releases, func(rel string) bool { return rel != t.scope.Release })
	}
	// Size the maps once: each release has about as many image platforms
	// as its longest record.
	hint := 0
	for _, rel := range releases {
		most := 0
		for _, rec := range t.ev.Records[rel] {
			most = max(most, len(rec.Built))
		}
		hint += most
	}
	t.images = make(map[imageKey]*imageAcc, hint)
	t.recordedAt = make(map[nameDigest][]*imageAcc, hint)
	t.runs = map[*record.Run]string{}
	for _, rel := range releases {
		for fpr, rec := range t.ev.Records[rel] {
			// Latest first: a line that a later run recorded for the same
			// image platform replaces the earlier ones.
			for i := len(rec.Built) - 1; i >= 0; i-- {
				b := rec.Built[i]
				if !t.scope.hasName(b.Name) {
					continue
				}
				a := t.image(imageKey{rel, b.Name, b.Tag})
				if _, seen := a.built(b.Platform, fpr); seen {
					continue
				}
				if !slices.Contains(a.platforms, b.Platform) {
					a.platforms = append(a.platforms, b.Platform)
				}
				var run *record.Run
				if b.Run >= 0 && b.Run < len(rec.Runs) {
					run = &rec.Runs[b.Run]
					if _, ok := t.runs[run]; !ok {
						t.runs[run] = runDescription(run)
					}
				}
				a.builds = append(a.builds, builtAt{b.Platform, fpr, b.Digest, run})
				d := a.row(b.Digest, b.Platform)
				d.BuiltBy = append(d.BuiltBy, fpr)
				key := nameDigest{b.Name, b.Digest}
				if at := t.recordedAt[key]; !slices.Contains(at, a) {
					t.recordedAt[key] = append(at, a)
				}
			}
		}
	}
}

// tagOf returns the tag a good signature's payload names, or "" when the
// file names none that can be trusted to belong to its directory.
func tagOf(f *JudgedFile) string {
	if f.Verdict.Severity == sigstore.SeverityInvalid {
		return ""
	}
	ref := f.Verdict.Signature.Payload.Reference
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ""
	}
	return ref[i+1:]
}

// legacyTag is the tag a legacy payload's reference names, "" for none.
func legacyTag(ref string) string {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ""
	}
	return ref[i+1:]
}

// readFiles attaches every signature directory in scope to its images and
// gathers the problems in scope.
func (t *tally) readFiles() {
	files := t.ev.Files
	for i := 0; i < len(files); {
		f := &files[i]
		if f.Name == "" {
			if t.scope.whole() {
				t.problem(f)
			}
			i++
			continue
		}
		end := i + 1
		for end < len(files) && files[end].Name == f.Name && files[end].Verdict.Location.Digest == f.Verdict.Location.Digest {
			end++
		}
		t.readDir(f.Name, f.Verdict.Location.Digest, files[i:end])
		i = end
	}
}

// readDir handles the files of one signature directory.
func (t *tally) readDir(name, digest string, files []JudgedFile) {
	if !t.scope.hasName(name) {
		return
	}
	attached := t.recordedAt[nameDigest{name, digest}]
	if len(attached) == 0 && t.scope.Release != "" {
		return // not part of this release
	}
	for i := range files {
		t.problem(&files[i])
	}
	if t.scope.Release == "" {
		for i := range files {
			tag := tagOf(&files[i])
			if tag == "" || slices.ContainsFunc(attached, func(a *imageAcc) bool { return a.key.tag == tag }) {
				continue
			}
			a := t.image(imageKey{"", name, tag})
			a.row(digest, "")
			attached = append(attached, a)
		}
		// A digest that only legacy signatures name is an image of its
		// own, below quorum, rather than nothing at all.
		for i := range files {
			f := &files[i]
			if len(attached) > 0 && !slices.ContainsFunc(attached, func(a *imageAcc) bool { return a.legacy }) {
				break
			}
			if f.Verdict.Problem != sigstore.KindLegacy {
				continue
			}
			tag := legacyTag(f.Verdict.Signature.Payload.Reference)
			if slices.ContainsFunc(attached, func(a *imageAcc) bool { return a.key.tag == tag }) {
				continue
			}
			a := t.image(imageKey{"", name, tag})
			a.legacy = a.legacy || len(a.rows) == 0
			a.row(digest, "")
			attached = append(attached, a)
		}
	}
	for _, a := range attached {
		for _, d := range a.rows {
			if d.Digest == digest {
				t.sign(a, d, files)
			}
		}
	}
}

func (t *tally) problem(f *JudgedFile) {
	if p, ok := f.Problem(); ok {
		t.problems = append(t.problems, p)
	}
}

// sign lists the signers of a digest's files and counts the distinct
// trusted keys whose signature counts for this image's tag.
func (t *tally) sign(a *imageAcc, d *DigestStatus, files []JudgedFile) {
	counted := map[string]bool{}
	for i := range files {
		f := &files[i]
		sig := f.Verdict.Signature
		if sig.Issuer == "" && sig.Signer == "" {
			continue // nothing is known of who made it: see the problems
		}
		if d.Signers == nil || cap(d.Signers) == 0 {
			d.Signers = make([]Signer, 0, len(files))
		}
		s := Signer{Fingerprint: sig.Signer, Subkey: sig.Subkey, Path: f.Path, Counted: f.Counts, Reason: f.Reason, Clients: f.Verdict.Clients}
		if s.Counted && s.Clients != "" && t.ev.StrictClients {
			s.Counted, s.Reason = false, "podman and skopeo refuse it now, and --strict-clients counts only what they accept: "+s.Clients
		}
		if s.Fingerprint == "" {
			s.Fingerprint = sig.Issuer
		}
		if k, ok := t.keyByFpr[sig.Signer]; ok && sig.Signer != "" {
			s.Name, s.Trusted = k.Name, true
		}
		if tag := tagOf(f); s.Counted && tag != a.key.tag {
			s.Counted, s.Reason = false, "it signs the tag "+tag+", not "+a.key.tag
		}
		s.Counted = s.Counted && s.Trusted
		if s.Counted {
			counted[s.Fingerprint] = true
		}
		d.Signers = append(d.Signers, s)
	}
	d.Count = len(counted)
	d.Quorum = d.Count >= t.ev.Threshold
}

// status works out the quorum, divergence and build matrix of an image.
func (t *tally) status(a *imageAcc) ImageStatus {
	ev := t.ev
	img := ImageStatus{Reference: ev.Policy.Reference(a.key.name, a.key.tag), Name: a.key.name, Tag: a.key.tag,
		Release: a.key.release, Legacy: a.legacy, Digests: make([]DigestStatus, 0, len(a.rows)), Builds: []BuildCell{}}
	if a.key.tag == "" {
		img.Reference = ev.Policy.Repository(a.key.name)
	}
	slices.SortFunc(a.rows, func(x, y *DigestStatus) int {
		return cmp.Or(strings.Compare(x.Platform, y.Platform), strings.Compare(x.Digest, y.Digest))
	})
	for _, d := range a.rows {
		slices.Sort(d.BuiltBy)
		if d.BuiltBy == nil {
			d.BuiltBy = []string{} // a contract field: [] rather than absent
		}
		img.Digests = append(img.Digests, *d)
	}
	if a.key.release == "" {
		img.Superseded = t.tagRecorded(a.key.name, a.key.tag)
	}

	// Slots: a recorded image has one per platform; an image without
	// records one per digest.
	type slot struct {
		platform string
		rows     []*DigestStatus
	}
	var slots []slot
	if a.key.release != "" {
		slices.Sort(a.platforms)
		for _, p := range a.platforms {
			s := slot{platform: p}
			for _, d := range a.rows {
				if d.Platform == p {
					s.rows = append(s.rows, d)
				}
			}
			slots = append(slots, s)
		}
	} else {
		for _, d := range a.rows {
			slots = append(slots, slot{rows: []*DigestStatus{d}})
		}
	}
	img.Quorum = len(slots) > 0
	for _, s := range slots {
		img.Quorum = img.Quorum && slices.ContainsFunc(s.rows, func(d *DigestStatus) bool { return d.Quorum })
		if len(s.rows) > 1 {
			img.Divergent = true
		}
	}

	// The matrix: every key of the trust root and every builder.
	fprs := t.fprs
	for _, b := range a.builds {
		if _, ok := t.keyByFpr[b.fpr]; !ok && !slices.Contains(fprs, b.fpr) {
			if len(fprs) == len(t.fprs) {
				fprs = slices.Clone(fprs)
			}
			fprs = append(fprs, b.fpr)
		}
	}
	if len(fprs) != len(t.fprs) {
		slices.Sort(fprs)
	}
	img.Builds = make([]BuildCell, 0, len(slots)*len(fprs))
	for _, s := range slots {
		agreed := agreedDigest(s.rows)
		for _, f := range fprs {
			k, trusted := t.keyByFpr[f]
			c := BuildCell{Platform: s.platform, Fingerprint: f, Name: k.Name, Trusted: trusted, State: CellMissing}
			if b, ok := a.built(s.platform, f); ok && a.key.release != "" {
				c.Digest, c.Builder = b.digest, t.describeRun(b.run)
			} else {
				c.Digest = signedIn(s.rows, f)
			}
			for _, d := range s.rows {
				if d.Digest == c.Digest && slices.ContainsFunc(d.Signers, func(x Signer) bool { return x.Counted && x.Fingerprint == f }) {
					c.Signed = true
				}
			}
			switch {
			case c.Digest == "":
			case len(s.rows) == 1 || c.Digest == agreed:
				c.State = CellMatch
			default:
				c.State = CellDivergent
			}
			if a.key.release == "" && c.Digest == "" {
				c.Digest = s.rows[0].Digest // the row this cell belongs to
			}
			img.Builds = append(img.Builds, c)
		}
	}
	return img
}

// tagRecorded reports whether any release's build records list name:tag;
// t.recordedTags must be allRecordedTags.
func (t *tally) tagRecorded(name, tag string) bool {
	return t.recordedTags[nameTag{name, tag}]
}

// allRecordedTags is every name:tag the build records of any release list.
func (t *tally) allRecordedTags() map[nameTag]bool {
	tags := map[nameTag]bool{}
	for _, recs := range t.ev.Records {
		for _, rec := range recs {
			for _, b := range rec.Built {
				tags[nameTag{b.Name, b.Tag}] = true
			}
		}
	}
	return tags
}

// agreedDigest is the digest of a slot the others are measured against:
// the one with the most counted signatures, when one leads.
func agreedDigest(rows []*DigestStatus) string {
	best, bestCount, tie := "", -1, false
	for _, d := range rows {
		switch {
		case d.Count > bestCount:
			best, bestCount, tie = d.Digest, d.Count, false
		case d.Count == bestCount && d.Digest != best:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// signedIn returns the digest among rows that fingerprint f signed with a
// signature that counts, if any.
func signedIn(rows []*DigestStatus, f string) string {
	for _, d := range rows {
		for _, s := range d.Signers {
			if s.Counted && s.Fingerprint == f {
				return d.Digest
			}
		}
	}
	return ""
}

// describeRun summarises where a build ran, for spotting the odd builder
// out; the cells of one run share the string, made by readRecords.
func (t *tally) describeRun(r *record.Run) string {
	return t.runs[r]
}

// runDescription is describeRun's string for r.
func runDescription(r *record.Run) string {
	if r.Time.IsZero() {
		return ""
	}
	src := r.Source
	if len(src) > 12 {
		src = src[:12]
	}
	return r.Platform + " " + r.CPUVendor + " " + r.CPUModel + ", source " + src + " (dirty " + r.Dirty + ")"
}
