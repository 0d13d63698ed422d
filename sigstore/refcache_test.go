package sigstore

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSignedRefCacheAnswersAsTheParser checks that a cached answer of
// parseSignedReference is the parser's, for accepted and refused
// references alike, and that refused ones are never cached.
func TestSignedRefCacheAnswersAsTheParser(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"stagex/core-gcc:14.2.0", "docker.io/stagex/a:1", "localhost:5000/a/b:c", "busybox:1",
		"stagex/a", "stagex/a@" + testDigest, "stagex/A:1", "-a:1", "", testHex} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			for round := range 3 {
				ref, err := parseSignedReference(s)
				want, wantErr := parseDockerReference(s)
				if wantErr == nil && (want.tag == "" || want.digest != "") {
					wantErr = fmt.Errorf("no tag or a digest")
				}
				if (err == nil) != (wantErr == nil) {
					t.Fatalf("round %d: parseSignedReference(%q) error %v, want error %v", round, s, err, wantErr)
				}
				if err != nil {
					if _, cached := signedRefCache.get(s); cached {
						t.Fatalf("refused reference %q is cached", s)
					}
					continue
				}
				if diff := cmp.Diff(want, ref, cmp.AllowUnexported(dockerReference{})); diff != "" {
					t.Fatalf("round %d: (-parser +cached):\n%s", round, diff)
				}
			}
		})
	}
}

func TestSignedRefCacheIsBounded(t *testing.T) {
	t.Parallel()
	for i := range maxRefCache + 10 {
		if _, err := parseSignedReference(fmt.Sprintf("stagex/bound-%d:1", i)); err != nil {
			t.Fatal(err)
		}
	}
	signedRefCache.mu.Lock()
	n := len(signedRefCache.refs)
	signedRefCache.mu.Unlock()
	if n > maxRefCache {
		t.Fatalf("the cache holds %d references, more than %d", n, maxRefCache)
	}
}
