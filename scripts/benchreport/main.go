// Command benchreport prints named ratios between benchmarks from the output
// of go test -bench (make bench writes it to bench.out):
//
//	go run ./scripts/benchreport bench.out
//
// The ratios are the table below: add a line to add a ratio. A ratio whose
// benchmarks are not in the output is listed as skipped, never guessed.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// ratio is one line of the report: Num in Unit divided by Den in DenUnit.
type ratio struct {
	// Name says what the number means.
	Name string
	// Num and Den name benchmarks as go test prints them without the -N
	// GOMAXPROCS suffix ("BenchmarkSign/500"); prefix the last element of the
	// package path ("release.BenchmarkSign/500") when a name is in several
	// packages.
	Num, Den string
	// Unit is Num's metric: "ns/op" when empty, or "B/op", "allocs/op" or
	// a unit of b.ReportMetric.
	Unit string
	// DenUnit is Den's metric; Unit when empty.
	DenUnit string
	// DenPerCPU divides Den by the CPU count the benchmark ran with (its -N
	// suffix) first: "time vs crypto time spread over every core".
	DenPerCPU bool
}

// ratios is the report. Benchmarks named here that do not exist yet are
// skipped until the issue that adds them lands; fix the names then.
var ratios = []ratio{
	// Target: noncrypto-ns/op (printed with the ratio) under 1e9 on 2 cores.
	{Name: "sign 500 into 20k: non-crypto share of wall", Num: "release.BenchmarkSign500Into20000", Unit: "noncrypto-ns/op", Den: "release.BenchmarkSign500Into20000", DenUnit: "ns/op"},
	{Name: "sign 500 into 20k: non-crypto share of cpu", Num: "release.BenchmarkSign500Into20000", Unit: "noncrypto-cpu-ns/op", Den: "release.BenchmarkSign500Into20000", DenUnit: "cpu-ns/op"},
	{Name: "sign 500 into 20k: crypto wall vs cpu/cores", Num: "release.BenchmarkSign500Into20000", Unit: "crypto-ns/op", Den: "release.BenchmarkSign500Into20000", DenUnit: "crypto-cpu-ns/op", DenPerCPU: true},
	// Target: noncrypto-ns/op under 1e9 (the merge reads and writes only the changed trees).
	{Name: "merge 2x500 into 20k: non-crypto share of wall", Num: "merge.BenchmarkMerge2x500Into20000", Unit: "noncrypto-ns/op", Den: "merge.BenchmarkMerge2x500Into20000", DenUnit: "ns/op"},
	{Name: "merge 2x500 into 20k, bare: non-crypto share of wall", Num: "merge.BenchmarkMerge2x500Into20000Bare", Unit: "noncrypto-ns/op", Den: "merge.BenchmarkMerge2x500Into20000Bare", DenUnit: "ns/op"},
	// Whole-repository verify of 20,000 signatures (release/verify_bench_test.go).
	// Targets: cold <= 1.3, gpg loop >= 50, warm >= 20, memory <= 1.
	{Name: "verify 20k cold vs crypto/cores (wall)", Num: "release.BenchmarkVerifyCold", Den: "release.BenchmarkVerifyCrypto", DenPerCPU: true},
	{Name: "verify 20k cold vs crypto (cpu)", Num: "release.BenchmarkVerifyCold", Unit: "cpu-ns/op", Den: "release.BenchmarkVerifyCrypto"},
	// What the machine allows: go-crypto alone over every core, and cold against it.
	{Name: "verify 20k: go-crypto on all cores vs crypto/cores", Num: "release.BenchmarkVerifyCryptoAllCores", Den: "release.BenchmarkVerifyCrypto", DenPerCPU: true},
	{Name: "verify 20k cold vs go-crypto on all cores (wall)", Num: "release.BenchmarkVerifyCold", Den: "release.BenchmarkVerifyCryptoAllCores"},
	// tally's RSA verification (sigstore/rsa.go) against go-crypto's, per signature.
	{Name: "RSA-3072 verify: tally's fast path vs go-crypto", Num: "sigstore.BenchmarkVerifyRSA3072/fast-path", Den: "sigstore.BenchmarkVerifyRSA3072/go-crypto"},
	{Name: "sigstore.Verify vs crypto (cpu, 1 core)", Num: "release.BenchmarkVerifySigstore", Unit: "cpu-ns/op", Den: "release.BenchmarkVerifyCrypto"},
	{Name: "verify 20k: blob reads vs crypto (1 core)", Num: "release.BenchmarkVerifyReadBlobs", Den: "release.BenchmarkVerifyCrypto"},
	{Name: "verify: gpg --verify loop vs cold, per sig", Num: "release.BenchmarkVerifyGPGLoop", Unit: "ns/sig", Den: "release.BenchmarkVerifyCold"},
	{Name: "verify 20k: cold vs warm (wall)", Num: "release.BenchmarkVerifyCold", Den: "release.BenchmarkVerifyWarm"},
	{Name: "verify 20k cold: peak RSS vs 300 MB budget", Num: "release.BenchmarkVerifyCold", Unit: "peak-MB", Den: "release.BenchmarkVerifyCold", DenUnit: "budget-MB"},
	{Name: "check 500 into 20k: share of the 2 s budget", Num: "hooks.BenchmarkCheck500Into20k", Den: "hooks.BenchmarkCheck500Into20k", DenUnit: "budget-ns"},
	{Name: "check 500 into 20k vs into 1k", Num: "hooks.BenchmarkCheck500Into20k", Den: "hooks.BenchmarkCheck500Into1k"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport bench.out")
		os.Exit(64)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
		os.Exit(66)
	}
	defer f.Close()
	results, err := parse(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: reading %s: %v\n", os.Args[1], err)
		os.Exit(65)
	}
	report(os.Stdout, ratios, results)
}

// result is the mean of one benchmark's metrics over its runs.
type result struct {
	cpus   int
	sums   map[string]float64 // unit -> sum over runs
	counts map[string]int     // unit -> runs
	pkgs   map[string]bool    // packages that have a benchmark by this key
}

func (r *result) mean(unit string) (float64, bool) {
	if r.counts[unit] == 0 {
		return 0, false
	}
	return r.sums[unit] / float64(r.counts[unit]), true
}

// parse reads go test -bench output. Each benchmark is filed under its name
// and under "<package base>.<name>"; a name seen in two packages is
// ambiguous and only the qualified key is usable.
func parse(r io.Reader) (map[string]*result, error) {
	results := map[string]*result{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue // not a result line (a benchmark's own log output)
		}
		name, cpus := splitCPU(fields[0])
		for _, key := range []string{name, path.Base(pkg) + "." + name} {
			res := results[key]
			if res == nil {
				res = &result{cpus: cpus, sums: map[string]float64{}, counts: map[string]int{}, pkgs: map[string]bool{}}
				results[key] = res
			}
			res.pkgs[pkg] = true
			for i := 2; i+1 < len(fields); i += 2 {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err != nil {
					return nil, fmt.Errorf("bad value %q in %q", fields[i], line)
				}
				res.sums[fields[i+1]] += v
				res.counts[fields[i+1]]++
			}
		}
	}
	return results, sc.Err()
}

// splitCPU splits "BenchmarkX/sub-8" into "BenchmarkX/sub" and 8; a name
// without the suffix ran with GOMAXPROCS=1. Like go test's own tools it
// cannot tell a sub-benchmark named "size-10" at GOMAXPROCS=1 from "size" at
// 10: do not end sub-benchmark names in -<number> (write "n=10").
func splitCPU(s string) (string, int) {
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if n, err := strconv.Atoi(s[i+1:]); err == nil && n > 0 {
			return s[:i], n
		}
	}
	return s, 1
}

// report prints one line per ratio: its value, or why it was skipped.
func report(w io.Writer, ratios []ratio, results map[string]*result) {
	fmt.Fprintln(w, "ratios:")
	for _, r := range ratios {
		unit, denUnit := r.Unit, r.DenUnit
		if unit == "" {
			unit = "ns/op"
		}
		if denUnit == "" {
			denUnit = unit
		}
		num, why := lookup(results, r.Num, unit)
		den, whyDen := lookup(results, r.Den, denUnit)
		if why == "" {
			why = whyDen
		}
		if why != "" {
			fmt.Fprintf(w, "  %-45s skipped: %s\n", r.Name, why)
			continue
		}
		n, _ := num.mean(unit)
		d, _ := den.mean(denUnit)
		denText := fmt.Sprintf("%s %.4g %s", r.Den, d, denUnit)
		if r.DenPerCPU {
			d /= float64(den.cpus)
			denText = fmt.Sprintf("(%s / %d CPUs)", denText, den.cpus)
		}
		if d == 0 {
			fmt.Fprintf(w, "  %-45s skipped: %s is zero\n", r.Name, r.Den)
			continue
		}
		fmt.Fprintf(w, "  %-45s %8.3f   (%s %.4g %s / %s)\n", r.Name, n/d, r.Num, n, unit, denText)
	}
}

// lookup finds a benchmark's result with unit, or says why it cannot.
func lookup(results map[string]*result, name, unit string) (*result, string) {
	res := results[name]
	switch {
	case res == nil:
		return nil, name + " absent"
	case len(res.pkgs) > 1:
		return nil, name + " is in several packages; prefix the package name"
	}
	if _, ok := res.mean(unit); !ok {
		return nil, name + " has no " + unit
	}
	return res, ""
}
