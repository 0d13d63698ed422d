package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/tally-sig/tally/sigstore
cpu: Some CPU
BenchmarkVerifyCrypto-2   	     100	   2000000 ns/op	    4096 B/op	      10 allocs/op
BenchmarkVerifyCrypto-2   	     100	   4000000 ns/op	    4096 B/op	      10 allocs/op
BenchmarkShared-2         	    1000	      1000 ns/op
PASS
ok  	github.com/tally-sig/tally/sigstore	3.2s
pkg: github.com/tally-sig/tally/release
BenchmarkSign500Into20k-2 	       1	 900000000 ns/op	 300000000 noncrypto-ns/op
BenchmarkVerifyCold-2     	       1	   6000000 ns/op
BenchmarkVerifyCold-2 is logging something odd here
BenchmarkShared-2         	    1000	      3000 ns/op
BenchmarkSub/small-2      	    1000	       500 ns/op
PASS
ok  	github.com/tally-sig/tally/release	9.1s
`

func run(t *testing.T, rs []ratio) string {
	t.Helper()
	results, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	report(&out, rs, results)
	return out.String()
}

func TestRatios(t *testing.T) {
	tests := []struct {
		name string
		r    ratio
		want string
	}{
		{"mean over runs, per CPU", ratio{Name: "r", Num: "BenchmarkVerifyCold", Den: "BenchmarkVerifyCrypto", DenPerCPU: true},
			"r 4.000 "}, // 6ms / (mean 3ms / 2 CPUs)
		{"units of one benchmark", ratio{Name: "r", Num: "release.BenchmarkSign500Into20k", Unit: "noncrypto-ns/op", Den: "BenchmarkSign500Into20k", DenUnit: "ns/op"},
			"r 0.333 "},
		{"other metric", ratio{Name: "r", Num: "BenchmarkVerifyCrypto", Den: "BenchmarkVerifyCrypto", Unit: "allocs/op"},
			"r 1.000 "},
		{"sub-benchmark", ratio{Name: "r", Num: "BenchmarkSub/small", Den: "release.BenchmarkShared"},
			"r 0.167 "},
		{"qualified names", ratio{Name: "r", Num: "release.BenchmarkShared", Den: "sigstore.BenchmarkShared"},
			"r 3.000 "},
		{"absent", ratio{Name: "r", Num: "BenchmarkNope", Den: "BenchmarkVerifyCold"},
			"r skipped: BenchmarkNope absent"},
		{"ambiguous", ratio{Name: "r", Num: "BenchmarkShared", Den: "BenchmarkVerifyCold"},
			"r skipped: BenchmarkShared is in several packages"},
		{"missing unit", ratio{Name: "r", Num: "BenchmarkVerifyCold", Den: "BenchmarkVerifyCrypto", Unit: "B/op"},
			"r skipped: BenchmarkVerifyCold has no B/op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(strings.Fields(run(t, []ratio{tt.r})), " ")
			if !strings.Contains(got, tt.want) {
				t.Errorf("report %q does not contain %q", got, tt.want)
			}
		})
	}
}

func TestSplitCPU(t *testing.T) {
	for in, want := range map[string]struct {
		name string
		cpus int
	}{
		"BenchmarkX-8":      {"BenchmarkX", 8},
		"BenchmarkX":        {"BenchmarkX", 1},
		"BenchmarkX/a-b-2":  {"BenchmarkX/a-b", 2},
		"BenchmarkX/n=10-2": {"BenchmarkX/n=10", 2},
	} {
		name, cpus := splitCPU(in)
		if name != want.name || cpus != want.cpus {
			t.Errorf("splitCPU(%q) = %q, %d; want %q, %d", in, name, cpus, want.name, want.cpus)
		}
	}
}
