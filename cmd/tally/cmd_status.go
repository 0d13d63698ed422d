package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/policy"
	"github.com/tally-sig/tally/release/quorum"
	"github.com/tally-sig/tally/sigstore"
)

func statusCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show who built and signed what, the quorum per image, and every problem",
		ArgsUsage: "[NAME...]",
		Description: `Judges every signature file of the repository (or of one --release, or of the
named images) and shows the matrix image x platform x maintainer: "match" for
a build of the digest the others agree on ("match*": built, but no signature
of it counts), "DIVERGENT" for a different digest of the same image and
platform, "-" for nothing. An image meets quorum when every platform has a
digest signed by M distinct trusted keys. Problems follow: invalid files
(they do not parse or verify, or claim another digest or image than the place
they sit in) and warnings (untrusted signers, duplicates, legacy payloads,
numbering gaps, expired or revoked keys).

Signatures are read from git objects, so a bare repository works; results are
cached in the git directory, so a second run verifies only what is new.
--keyring and --threshold replace the repository's trust root with yours.

It exits like tally verify: 0 when every image meets quorum, 1 when one does
not, 2 when an invalid signature file exists.

EXAMPLES:
   tally status --repo signatures --release 2026.11.0
   tally status --repo signatures core-gcc core-musl
   tally status --repo signatures --keyring my-maintainers.pgp --threshold 3 --json`,
		Flags: checkFlags(),
		Action: func(c *cli.Context) error {
			opts, err := checkOptions(c, c.Args().Slice())
			if err != nil {
				return err
			}
			repo, err := openRepo(env, c.Path("repo"))
			if err != nil {
				return err
			}
			defer repo.Close()
			rep, err := release.Status(c.Context, repo, opts)
			if err != nil {
				return err
			}
			warn(env, rep.Warnings)
			if c.Bool("json") {
				if err := writeJSON(env.stdout, rep); err != nil {
					return err
				}
			} else {
				printStatus(env.stdout, rep, newPalette(env.stdout))
			}
			return exitFor(rep.Verdict())
		},
	}
}

// strictClientsFlag is --strict-clients of verify and release plan.
func strictClientsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "strict-clients",
		Usage: "count only signatures that stock podman and skopeo with the current keyring accept now"}
}

// clientWarnings says, per image, which counted signatures stock clients
// refuse now: one line per image, the remedy in the hint.
func clientWarnings(w io.Writer, rep *quorum.Report, p palette) {
	for _, img := range rep.Images {
		var why []string
		for _, d := range img.Digests {
			for _, s := range d.Signers {
				if s.Clients != "" && (s.Counted || rep.StrictClients) {
					why = append(why, fmt.Sprintf("%s %s by %s: %s", orUnknown(d.Platform), release.ShortDigest(d.Digest), quorum.DisplayName(s.Name, s.Fingerprint), s.Clients))
				}
			}
		}
		if len(why) == 0 {
			continue
		}
		name := img.Reference
		if img.Release != "" {
			name += " (release " + img.Release + ")"
		}
		fmt.Fprintf(w, "%s %s: %d signature(s) count for the quorum; podman and skopeo refuse them now: %s\n",
			p.yellow("WARN"), name, len(why), strings.Join(why, "; "))
		fmt.Fprintf(w, "  hint: extend the key's expiry and refresh the repository's keyring, or sign again with a key clients accept; --strict-clients makes this blocking\n")
	}
}

// checkFlags are the flags status and verify share.
func checkFlags() []cli.Flag {
	return []cli.Flag{
		repoFlag(),
		&cli.StringFlag{Name: "release", Usage: "judge only the images and digests that this release's build records list"},
		&cli.StringSliceFlag{Name: "keyring", TakesFile: true,
			Usage: "trust these maintainer public keys (armored or binary OpenPGP) instead of the repository's keyring; repeat for several files"},
		&cli.IntFlag{Name: "threshold", DefaultText: "the repository's threshold", Usage: "M: distinct trusted keys that must sign each digest"},
		jsonFlag(),
	}
}

// checkOptions turns the shared flags and the image names into options.
func checkOptions(c *cli.Context, names []string) (release.CheckOptions, error) {
	opts := release.CheckOptions{Scope: quorum.Scope{Release: c.String("release"), Names: names}, Now: timeNow}
	if c.IsSet("release") {
		if err := policy.CheckReleaseName(opts.Scope.Release); err != nil {
			return opts, fail(exitUsage, err)
		}
	}
	for _, n := range names {
		if !policy.IsImageName(n) {
			return opts, usagef("%q is not an image name: give names below the namespace, like core-gcc (no tag, no registry)", n)
		}
	}
	if c.IsSet("threshold") {
		if c.Int("threshold") < 1 {
			return opts, usagef("--threshold must be at least 1, got %d", c.Int("threshold"))
		}
		opts.Threshold = c.Int("threshold")
	}
	if files := c.StringSlice("keyring"); len(files) > 0 {
		// Each file is read on its own (an armored and a binary one do not
		// concatenate), then the keys are joined in their binary form.
		var all bytes.Buffer
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return opts, fail(exitData, fmt.Errorf("reading --keyring: %w", err))
			}
			kr, err := sigstore.ReadKeyring(data)
			if err == nil {
				err = kr.Serialize(&all)
			}
			if err != nil {
				return opts, fail(exitData, fmt.Errorf("--keyring %s: %w", f, err),
					"give the maintainers' public keys: gpg --export FINGERPRINT... > keyring.pgp")
			}
		}
		var err error
		if opts.Keys, err = sigstore.ReadKeyring(all.Bytes()); err != nil {
			return opts, fail(exitData, fmt.Errorf("--keyring: %w", err))
		}
	}
	return opts, nil
}

// exitFor maps an outcome to the exit status of status and verify.
func exitFor(o release.Outcome) error {
	switch o {
	case release.OutcomeInvalid:
		return exitStatus(exitInvalid)
	case release.OutcomeMismatch:
		return exitStatus(exitMismatch)
	case release.OutcomeNoQuorum:
		return exitStatus(exitNoQuorum)
	}
	return nil
}

func warn(env *environment, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(env.stderr, "tally: warning: %s\n", w)
	}
}

// palette colours terminal output, and nothing else.
type palette struct{ on bool }

// newPalette colours output to a terminal unless NO_COLOR is set.
func newPalette(w io.Writer) palette {
	_, noColor := os.LookupEnv("NO_COLOR")
	return palette{on: isTerminal(w) && !noColor}
}

func (p palette) paint(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func (p palette) red(s string) string    { return p.paint("1;31", s) }
func (p palette) green(s string) string  { return p.paint("32", s) }
func (p palette) yellow(s string) string { return p.paint("33", s) }
func (p palette) dim(s string) string    { return p.paint("2", s) }
func (p palette) bold(s string) string   { return p.paint("1", s) }

// table prints aligned columns; colour is applied after padding so that it
// never shifts a quorum.Column.
type table struct {
	rows [][]cell
}

type cell struct {
	text  string
	paint func(string) string
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func plain(s string) cell { return cell{text: s} }

func (t *table) print(w io.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c.text)))
		}
	}
	for _, r := range t.rows {
		var b strings.Builder
		for i, c := range r {
			text := c.text
			if i < len(r)-1 {
				text += strings.Repeat(" ", widths[i]-len([]rune(c.text))+2)
			}
			if c.paint != nil {
				pad := len(text) - len(c.text)
				text = c.paint(c.text) + strings.Repeat(" ", pad)
			}
			b.WriteString(text)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// imageState is the word for an image's outcome.
func imageState(img quorum.ImageStatus, p palette) cell {
	switch {
	case img.Superseded:
		return cell{"superseded", p.dim}
	case img.Divergent:
		return cell{"DIVERGENT", p.red}
	case !img.Quorum:
		return cell{"NO QUORUM", p.yellow}
	}
	return cell{"ok", p.green}
}

// printStatus prints the matrix, the divergences and the problems.
func printStatus(w io.Writer, rep *quorum.Report, p palette) {
	printHeader(w, rep)
	if len(rep.Images) == 0 {
		fmt.Fprintln(w, "no signed images in scope")
	} else {
		cols := rep.Columns()
		var t table
		head := []cell{plain("IMAGE"), plain("RELEASE"), plain("PLATFORM")}
		for _, c := range cols {
			head = append(head, plain(strings.ToUpper(c.Title)))
		}
		t.add(append(head, plain("SIGNED"), plain("STATUS"))...)
		for _, img := range rep.Images {
			for i, slot := range img.Slots() {
				row := []cell{plain(""), plain(""), plain(slot)}
				if i == 0 {
					rel := img.Release
					if rel == "" {
						rel = "(no record)"
					}
					row[0], row[1] = plain(img.Reference), plain(rel)
				}
				if img.Release == "" {
					row[2] = plain(release.ShortDigest(slot))
				}
				for _, col := range cols {
					row = append(row, matrixCell(img, slot, col.Fingerprint, p))
				}
				best := 0
				for _, d := range img.SlotRows(slot) {
					best = max(best, d.Count)
				}
				row = append(row, plain(fmt.Sprintf("%d/%d", best, rep.Threshold)))
				if i == 0 {
					row = append(row, imageState(img, p))
				}
				t.add(row...)
			}
		}
		t.print(w)
		if slices.ContainsFunc(rep.Images, func(img quorum.ImageStatus) bool {
			return slices.ContainsFunc(img.Builds, func(c quorum.BuildCell) bool { return c.State == quorum.CellMatch && !c.Signed })
		}) {
			fmt.Fprintln(w, p.dim("match* = built the agreed digest, but no signature of it counts"))
		}
		if slices.ContainsFunc(cols, func(c quorum.Column) bool { return strings.HasSuffix(c.Title, "?") }) {
			fmt.Fprintln(w, p.dim("? = a build record by a key outside the keyring in use"))
		}
		printDivergences(w, rep, p)
	}
	printProblems(w, rep.Problems, p)
	printSummary(w, rep, p)
}

func printHeader(w io.Writer, rep *quorum.Report) {
	scope := "every release"
	if rep.Release != "" {
		scope = "release " + rep.Release
	}
	fmt.Fprintf(w, "%s at %s: %d of %d maintainer key(s) must sign each digest\n\n",
		scope, short(rep.Commit), rep.Threshold, len(rep.Maintainers))
}

func matrixCell(img quorum.ImageStatus, slot, fpr string, p palette) cell {
	for _, c := range img.Builds {
		if c.Fingerprint != fpr || img.Slot(c.Platform, c.Digest) != slot {
			continue
		}
		switch c.State {
		case quorum.CellMatch:
			if c.Signed {
				return cell{"match", p.green}
			}
			return cell{"match*", p.yellow}
		case quorum.CellDivergent:
			return cell{"DIVERGENT", p.red}
		}
		return cell{"-", p.dim}
	}
	return cell{"", nil}
}

// printDivergences lists, for every divergent platform, who built what and
// where.
func printDivergences(w io.Writer, rep *quorum.Report, p palette) {
	first := true
	for _, img := range rep.Images {
		if !img.Divergent {
			continue
		}
		if first {
			fmt.Fprintf(w, "\n%s\n", p.red("divergent builds:"))
			first = false
		}
		for _, slot := range img.Slots() {
			if len(img.SlotRows(slot)) < 2 {
				continue
			}
			fmt.Fprintf(w, "  %s %s (release %s):\n", img.Reference, slot, img.Release)
			for _, c := range img.Builds {
				if c.Platform != slot || c.Digest == "" {
					continue
				}
				line := fmt.Sprintf("    %-9s %s  %s", c.State, c.Digest, quorum.DisplayName(c.Name, c.Fingerprint))
				if c.Builder != "" {
					line += "  [" + c.Builder + "]"
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}

// maxWarningsPerKind bounds how many warnings of one kind are listed; an
// adopted repository can hold thousands of legacy signatures.
const maxWarningsPerKind = 10

// printProblems lists every invalid file and the warnings, grouped: of
// one kind for one image, the first is shown and the others counted (an
// adopted repository can hold thousands of legacy signatures), and at most
// maxWarningsPerKind groups of each kind (--json lists them all). Paths
// with control characters are quoted.
func printProblems(w io.Writer, problems []quorum.Problem, p palette) {
	if len(problems) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", p.bold("problems:"))
	type group struct {
		first quorum.Problem
		n     int
	}
	var order []string
	groups := map[string]*group{}
	for _, pr := range problems {
		if pr.Severity == string(sigstore.SeverityInvalid) {
			fmt.Fprintf(w, "  %s %s %s: %s\n", p.red("invalid"), pr.Kind, displayPath(pr.Path), pr.Error)
			continue
		}
		image, _, found := strings.Cut(pr.Path, "@")
		if !found {
			image = pr.Path
		}
		key := pr.Kind + "\x00" + image
		g := groups[key]
		if g == nil {
			g = &group{first: pr}
			groups[key] = g
			order = append(order, key)
		}
		g.n++
	}
	shown := map[string]int{}
	for _, key := range order {
		g := groups[key]
		kind := g.first.Kind
		shown[kind]++
		if shown[kind] > maxWarningsPerKind {
			continue
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", p.yellow("warning"), kind, displayPath(g.first.Path), g.first.Error)
		if g.n > 1 {
			image, _, _ := strings.Cut(g.first.Path, "@")
			fmt.Fprintf(w, "    … and %d more %s warning(s) of %s\n", g.n-1, kind, displayPath(image))
		}
	}
	kinds := make([]string, 0, len(shown))
	for k := range shown {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		if n := shown[k] - maxWarningsPerKind; n > 0 {
			fmt.Fprintf(w, "  … and %s warnings of %d more image(s) (--json lists them all)\n", k, n)
		}
	}
}

// displayPath quotes a path that holds control characters, so that a
// file name cannot forge lines of the output.
func displayPath(path string) string {
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x20 || c == 0x7f {
			return strconv.Quote(path)
		}
	}
	return path
}

// printSummary prints the closing counts and the verdict.
func printSummary(w io.Writer, rep *quorum.Report, p palette) {
	var met, below, divergent, superseded, invalid, warnings int
	for _, img := range rep.Images {
		switch {
		case img.Superseded:
			superseded++
		case img.Divergent:
			divergent++
		case img.Quorum:
			met++
		default:
			below++
		}
	}
	for _, pr := range rep.Problems {
		if pr.Severity == string(sigstore.SeverityInvalid) {
			invalid++
		} else {
			warnings++
		}
	}
	parts := []string{fmt.Sprintf("%d meet quorum", met), fmt.Sprintf("%d below quorum", below), fmt.Sprintf("%d divergent", divergent)}
	if superseded > 0 {
		parts = append(parts, fmt.Sprintf("%d superseded", superseded))
	}
	fmt.Fprintf(w, "\n%d image(s): %s; %d invalid file(s), %d warning(s)\n", len(rep.Images), strings.Join(parts, ", "), invalid, warnings)
	switch rep.Verdict() {
	case release.OutcomeInvalid:
		fmt.Fprintln(w, p.red("INVALID: the repository holds invalid signature files"))
	case release.OutcomeNoQuorum:
		fmt.Fprintln(w, p.yellow("quorum NOT met"))
	default:
		fmt.Fprintln(w, p.green("quorum met"))
	}
}
