package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tally-sig/tally/release/policy"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func sampleRun(t time.Time) Run {
	return Run{Time: t, Source: "3f2a9c0000000000000000000000000000000000", Dirty: "no", Platform: "linux/amd64",
		CPUVendor: "AuthenticAMD", CPUModel: "AMD EPYC 7B13 64-Core Processor", Tally: "0.1.0"}
}

func TestBuildRecordAppendOnly(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 18, 40, 0, 0, time.UTC)
	var r BuildRecord
	if n := r.Append(sampleRun(t0), []Built{
		{Name: "core-gcc", Tag: "14.2.0", Platform: "linux/arm64", Digest: digestB},
		{Name: "core-gcc", Tag: "14.2.0", Platform: "linux/amd64", Digest: digestA},
	}); n != 2 {
		t.Fatalf("Append = %d, want 2", n)
	}
	first := r.Marshal()
	want := "# tally build record: a \"run\" line per tally sign, then one line per image platform it built\n" +
		"run time=2026-11-28T18:40:00Z source=3f2a9c0000000000000000000000000000000000 dirty=no platform=linux/amd64 cpu-vendor=AuthenticAMD cpu-model=\"AMD EPYC 7B13 64-Core Processor\" tally=0.1.0\n" +
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa core-gcc 14.2.0 linux/amd64\n" +
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb core-gcc 14.2.0 linux/arm64\n"
	if diff := cmp.Diff(want, string(first)); diff != "" {
		t.Fatalf("Marshal (-want +got):\n%s", diff)
	}

	// The same builds again add nothing; a rebuild with another digest appends.
	if n := r.Append(sampleRun(t0.Add(time.Hour)), r.Built); n != 0 {
		t.Errorf("re-appending the same builds added %d", n)
	}
	if n := r.Append(sampleRun(t0.Add(time.Hour)), []Built{{Name: "core-gcc", Tag: "14.2.0", Platform: "linux/amd64", Digest: digestB}}); n != 1 {
		t.Fatalf("Append of a rebuild = %d, want 1", n)
	}
	second := r.Marshal()
	if !bytes.HasPrefix(second, first) {
		t.Errorf("appending rewrote earlier lines:\n%s", second)
	}
	if got := r.Latest()[BuiltKey{"core-gcc", "14.2.0", "linux/amd64"}]; got != digestB {
		t.Errorf("Latest = %s, want the last recorded digest %s", got, digestB)
	}
	parsed, err := ParseBuildRecord(second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, parsed); diff != "" {
		t.Errorf("parse(marshal) (-want +got):\n%s", diff)
	}
}

func TestParseBuildRecordRefuses(t *testing.T) {
	t.Parallel()
	h := "# tally build record: a \"run\" line per tally sign, then one line per image platform it built\n"
	run := "run time=2026-11-28T18:40:00Z source=x dirty=no platform=linux/amd64 cpu-vendor=v cpu-model=m tally=1\n"
	img := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa core-gcc 14.2.0 linux/amd64\n"
	for name, data := range map[string]string{
		"empty":            "",
		"no header":        run + img,
		"image before run": h + img,
		"short digest":     h + run + "aaaa core-gcc 1 linux/amd64\n",
		"upper digest":     h + run + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA core-gcc 1 linux/amd64\n",
		"five fields":      h + run + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa a b c d\n",
		"missing newline":  h + run + img[:len(img)-1],
		"bad time":         h + "run time=yesterday source=x dirty=no platform=p cpu-vendor=v cpu-model=m tally=1\n",
		"local time":       h + "run time=2026-11-28T18:40:00+01:00 source=x dirty=no platform=p cpu-vendor=v cpu-model=m tally=1\n",
		"bad dirty":        h + "run time=2026-11-28T18:40:00Z source=x dirty=maybe platform=p cpu-vendor=v cpu-model=m tally=1\n",
		"field order":      h + "run source=x time=2026-11-28T18:40:00Z dirty=no platform=p cpu-vendor=v cpu-model=m tally=1\n",
		"unterminated":     h + "run time=2026-11-28T18:40:00Z source=x dirty=no platform=p cpu-vendor=v cpu-model=\"m tally=1\n",
		"control char":     h + "run time=2026-11-28T18:40:00Z source=x dirty=no platform=p cpu-vendor=v cpu-model=\"a\\x00b\" tally=1\n",
		"space in name":    h + run + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa core  gcc linux/amd64\n",
		"crlf":             h + run + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa core-gcc 14.2.0 linux/amd64\r\n",
		"over the limit":   h + run + strings.Repeat(img, MaxBuildRecordSize/len(img)+1),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseBuildRecord([]byte(data)); !errors.Is(err, ErrBadRecord) {
				t.Errorf("ParseBuildRecord = %v, want ErrBadRecord", err)
			}
		})
	}
}

func TestCheckReleaseName(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{"2026.11.0": true, "1.0": true, "v2_rc-1": true,
		"": false, "../x": false, "a/b": false, "a..b": false, ".hidden": false, "x.lock": false, "a b": false} {
		if err := policy.CheckReleaseName(v); (err == nil) != ok {
			t.Errorf("CheckReleaseName(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func FuzzParseBuildRecord(f *testing.F) {
	var r BuildRecord
	r.Append(sampleRun(time.Date(2026, 11, 28, 18, 40, 0, 0, time.UTC)), []Built{{Name: "core-gcc", Tag: "14.2.0", Platform: "linux/amd64", Digest: digestA}})
	f.Add(r.Marshal())
	f.Add([]byte("# x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseBuildRecord(data)
		if err != nil {
			return
		}
		// An accepted record is exactly what Marshal writes: one canonical form,
		// so the push hook's "only lines were added" check cannot be fooled.
		if out := rec.Marshal(); !bytes.Equal(out, data) {
			t.Fatalf("accepted a non-canonical record:\n%q\nmarshals to\n%q", data, out)
		}
	})
}
