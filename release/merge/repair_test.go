package merge_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tally-sig/tally/gitstore"
	"github.com/tally-sig/tally/release"
	"github.com/tally-sig/tally/release/merge"
	"github.com/tally-sig/tally/sigstore"
)

// gappy commits signatures at the given numbers of core-a, and a
// contiguous core-b.
func gappy(t *testing.T, r *sigRepo, numbers map[int]string) map[int]string {
	t.Helper()
	var changes []gitstore.Change
	data := map[int]string{}
	for n, who := range numbers {
		blob := r.blob(who, "core-a", digestOf("core-a"))
		data[n] = string(blob)
		changes = append(changes, gitstore.Change{Path: sigPath("core-a", n), Data: blob})
	}
	changes = append(changes, gitstore.Change{Path: sigPath("core-b", 1), Data: r.blob("bob", "core-b", digestOf("core-b"))})
	r.commit("main", "alice", "another tool was here", changes...)
	return data
}

func TestRepairClosesGaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		numbers map[int]string
		moves   map[int]int // old number -> new
	}{
		{"one gap", map[int]string{1: "alice", 3: "bob", 4: "carol"}, map[int]int{3: 2, 4: 3}},
		{"no signature-1", map[int]string{2: "alice", 5: "bob"}, map[int]int{2: 1, 5: 2}},
		{"two gaps", map[int]string{1: "alice", 3: "bob", 6: "carol"}, map[int]int{3: 2, 6: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newSigRepo(t, true, 2, "alice", "bob", "carol")
			data := gappy(t, r, tt.numbers)
			before := r.tip("main")
			res, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Signer: signerFor(t, "alice"), Now: mergeClock})
			if err != nil {
				t.Fatal(err)
			}
			var want []merge.Renumbered
			for n := 1; n <= 10; n++ {
				if to, ok := tt.moves[n]; ok {
					want = append(want, merge.Renumbered{From: sigPath("core-a", n), To: sigPath("core-a", to)})
				}
			}
			if diff := cmp.Diff(want, res.Moved); diff != "" {
				t.Errorf("moved (-want +got):\n%s", diff)
			}
			// Bytes and order kept, numbers contiguous, nothing else touched.
			for n, d := range data {
				to := n
				if m, ok := tt.moves[n]; ok {
					to = m
				}
				if r.read("main", sigPath("core-a", to)) != d {
					t.Errorf("signature-%d did not arrive at signature-%d with its bytes", n, to)
				}
			}
			files := r.files(r.tip("main"))
			if len(files) != len(tt.numbers)+1 {
				t.Errorf("files after repair: %v", files)
			}
			c, _ := r.repo.ReadCommit(r.tip("main"))
			if c.Parents[0] != before || len(c.Signature) == 0 || !strings.HasPrefix(c.Message, "repair: ") {
				t.Errorf("repair commit: parents %v signed %v message %q", c.Parents, len(c.Signature) > 0, c.Message)
			}
			for _, m := range want {
				if !strings.Contains(c.Message, m.From+" -> "+m.To) {
					t.Errorf("commit message does not say %s -> %s:\n%s", m.From, m.To, c.Message)
				}
			}
			if err := r.repo.Clean(); err != nil {
				t.Errorf("working tree after repair: %v", err)
			}
			r.verifyClean()

			// Nothing left to repair: no commit, no key needed.
			again, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Now: mergeClock})
			if err != nil || again.Commit != "" || len(again.Moved) != 0 {
				t.Errorf("second repair: %+v, %v", again, err)
			}
		})
	}
}

func TestRepairRefusals(t *testing.T) {
	t.Parallel()
	t.Run("bare repository is published", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, false, 2, "alice", "bob", "carol")
		gappy(t, r, map[int]string{1: "alice", 3: "bob"})
		tip := r.tip("main")
		_, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Signer: signerFor(t, "alice"), Now: mergeClock})
		if !errors.Is(err, merge.ErrPublished) {
			t.Fatalf("err = %v, want ErrPublished", err)
		}
		if r.tip("main") != tip {
			t.Error("main moved")
		}
		res, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Signer: signerFor(t, "alice"), Force: true, Now: mergeClock})
		if err != nil || !res.Published || res.Commit == "" {
			t.Fatalf("forced repair: %+v, %v", res, err)
		}
		c, _ := r.repo.ReadCommit(r.tip("main"))
		if !strings.Contains(c.Message, "--force") {
			t.Errorf("a forced repair does not say so:\n%s", c.Message)
		}
	})
	t.Run("needs a maintainer key", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, true, 2, "alice", "bob", "carol")
		gappy(t, r, map[int]string{2: "alice"})
		for _, s := range []struct {
			signer sigstore.Signer
			want   error
		}{{nil, merge.ErrNoSigner}, {signerFor(t, "mallory"), release.ErrUntrustedSigner}} {
			if _, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Signer: s.signer, Now: mergeClock}); !errors.Is(err, s.want) {
				t.Errorf("err = %v, want %v", err, s.want)
			}
		}
	})
	t.Run("leaves odd names alone", func(t *testing.T) {
		t.Parallel()
		r := newSigRepo(t, true, 2, "alice", "bob", "carol")
		odd := strings.Replace(sigPath("core-a", 1), "signature-1", "signature-01", 1)
		r.commit("main", "alice", "odd", gitstore.Change{Path: odd, Data: []byte("x")})
		res, err := merge.Repair(context.Background(), r.repo, merge.RepairOptions{Signer: signerFor(t, "alice"), Now: mergeClock})
		if err != nil || res.Commit != "" || len(res.Ignored) != 1 || res.Ignored[0] != odd {
			t.Errorf("repair with an odd name: %+v, %v", res, err)
		}
	})
}
