package buildout_test

import (
	"testing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/internal/sample"
)

// BenchmarkRead500 reads a 500-package out/ directory of nested layouts, the
// size of a full StageX build.
func BenchmarkRead500(b *testing.B) {
	out := b.TempDir()
	if _, err := sample.Write(out, sample.Many(500, "bench")...); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		images, err := buildout.Read(out, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(images) != 500 {
			b.Fatalf("read %d images, want 500", len(images))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/image")
}
