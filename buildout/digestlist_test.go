package buildout_test

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tally-sig/tally/buildout"
)

var (
	hexA = strings.Repeat("a", 64)
	hexB = strings.Repeat("b", 64)
	hexC = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestReadDigestList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []buildout.DigestEntry
		wantErr string // substring; empty means success
	}{
		{name: "empty", in: ""},
		{
			name: "stagex digests file",
			in:   hexA + " core-gcc\n" + hexB + " core-musl\n",
			want: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core-gcc"}, {Digest: "sha256:" + hexB, Name: "core-musl"}},
		},
		{
			name: "no newline at the end",
			in:   hexA + " core-gcc",
			want: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core-gcc"}},
		},
		{
			name: "unsorted is read as given",
			in:   hexB + " core-musl\n" + hexA + " core-gcc\n",
			want: []buildout.DigestEntry{{Digest: "sha256:" + hexB, Name: "core-musl"}, {Digest: "sha256:" + hexA, Name: "core-gcc"}},
		},
		{
			name: "one name per platform",
			in:   hexA + " core-gcc\n" + hexB + " core-gcc\n",
			want: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core-gcc"}, {Digest: "sha256:" + hexB, Name: "core-gcc"}},
		},
		{name: "blank line", in: hexA + " core-gcc\n\n", wantErr: "line 2: want"},
		{name: "carriage return", in: hexA + " core-gcc\r\n", wantErr: "line 1: invalid image name"},
		{name: "two spaces", in: hexA + "  core-gcc\n", wantErr: "line 1: invalid image name"},
		{name: "tab", in: hexA + "\tcore-gcc\n", wantErr: "line 1: want"},
		{name: "trailing space", in: hexA + " core-gcc \n", wantErr: "line 1: invalid image name"},
		{name: "sha256 prefix", in: "sha256:" + hexA + " core-gcc\n", wantErr: "is not 64 lower-case hex digits"},
		{name: "upper-case hex", in: strings.ToUpper(hexA) + " core-gcc\n", wantErr: "is not 64 lower-case hex digits"},
		{name: "short hex", in: hexA[:63] + " core-gcc\n", wantErr: "is not 64 lower-case hex digits"},
		{name: "comment", in: "# digests\n", wantErr: "line 1"},
		{name: "name with a slash", in: hexA + " stagex/core-gcc\n", wantErr: "invalid image name"},
		{name: "name with a tag", in: hexA + " core-gcc:1.0\n", wantErr: "invalid image name"},
		{name: "duplicate line", in: hexA + " core-gcc\n" + hexB + " core-musl\n" + hexA + " core-gcc\n", wantErr: "line 3: sha256:" + hexA + " core-gcc listed twice"},
		{name: "line too long", in: hexA + " " + strings.Repeat("a", 1000) + "\n", wantErr: "line 1: longer than"},
		{name: "name too long", in: hexA + " " + strings.Repeat("a", 129) + "\n", wantErr: "invalid image name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := buildout.ReadDigestList(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, buildout.ErrDigestList) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadDigestList error = %v, want ErrDigestList containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadDigestList: %v", err)
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadDigestList mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteDigestList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []buildout.DigestEntry
		want    string
		wantErr string
	}{
		{name: "nothing", want: ""},
		{
			name: "sorted by name, then digest",
			entries: []buildout.DigestEntry{
				{Digest: "sha256:" + hexB, Name: "core-musl"},
				{Digest: "sha256:" + hexC, Name: "core-gcc"},
				{Digest: "sha256:" + hexA, Name: "core-gcc"},
				{Digest: "sha256:" + hexA, Name: "core-gcc-libs"},
			},
			want: hexC + " core-gcc\n" + hexA + " core-gcc\n" + hexA + " core-gcc-libs\n" + hexB + " core-musl\n",
		},
		{name: "digest without algorithm", entries: []buildout.DigestEntry{{Digest: hexA, Name: "core-gcc"}}, wantErr: "is not sha256:<64 lower-case hex>"},
		{name: "bad name", entries: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core gcc"}}, wantErr: "invalid image name"},
		{name: "newline in name", entries: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core\n" + hexB + " core-evil"}}, wantErr: "invalid image name"},
		{
			name:    "duplicate",
			entries: []buildout.DigestEntry{{Digest: "sha256:" + hexA, Name: "core-gcc"}, {Digest: "sha256:" + hexA, Name: "core-gcc"}},
			wantErr: "given twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			original := slices.Clone(tt.entries)
			var buf bytes.Buffer
			err := buildout.WriteDigestList(&buf, tt.entries)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WriteDigestList error = %v, want it to contain %q", err, tt.wantErr)
				}
				if buf.Len() != 0 {
					t.Errorf("WriteDigestList wrote %q despite the error", buf.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("WriteDigestList: %v", err)
			}
			if diff := gocmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("WriteDigestList mismatch (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(original, tt.entries); diff != "" {
				t.Errorf("WriteDigestList changed its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDigestEntries(t *testing.T) {
	t.Parallel()
	images := []buildout.Image{
		{Name: "core-gcc", Manifests: []buildout.Manifest{{Digest: "sha256:" + hexA}, {Digest: "sha256:" + hexB}}},
		{Name: "core-musl", Manifests: []buildout.Manifest{{Digest: "sha256:" + hexC}}},
	}
	want := []buildout.DigestEntry{
		{Digest: "sha256:" + hexA, Name: "core-gcc"},
		{Digest: "sha256:" + hexB, Name: "core-gcc"},
		{Digest: "sha256:" + hexC, Name: "core-musl"},
	}
	if diff := gocmp.Diff(want, buildout.DigestEntries(images)); diff != "" {
		t.Errorf("DigestEntries mismatch (-want +got):\n%s", diff)
	}
}

// FuzzReadDigestList checks that whatever the parser accepts survives a
// write and a second parse unchanged, and that writing is canonical.
func FuzzReadDigestList(f *testing.F) {
	f.Add([]byte(hexA + " core-gcc\n" + hexB + " core-musl\n"))
	f.Add([]byte(hexB + " core-musl\n" + hexA + " core-gcc"))
	f.Add([]byte(hexA + " core-gcc\n" + hexC + " core-gcc\n"))
	f.Add([]byte(hexA + " core-gcc\r\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := buildout.ReadDigestList(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, buildout.ErrDigestList) {
				t.Fatalf("ReadDigestList error %v does not wrap ErrDigestList", err)
			}
			return
		}
		var written bytes.Buffer
		if err := buildout.WriteDigestList(&written, entries); err != nil {
			t.Fatalf("WriteDigestList refused what ReadDigestList accepted: %v", err)
		}
		again, err := buildout.ReadDigestList(bytes.NewReader(written.Bytes()))
		if err != nil {
			t.Fatalf("ReadDigestList refused what WriteDigestList wrote: %v\n%q", err, written.Bytes())
		}
		sorted := slices.Clone(entries)
		slices.SortFunc(sorted, func(a, b buildout.DigestEntry) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Digest, b.Digest))
		})
		if diff := gocmp.Diff(sorted, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("parse, write, parse changed the entries (-first +second):\n%s", diff)
		}
		// The written form holds exactly the input's lines, sorted.
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(data) == 0 {
			lines = nil
		}
		slices.SortFunc(lines, func(a, b string) int {
			return cmp.Or(strings.Compare(a[65:], b[65:]), strings.Compare(a[:64], b[:64]))
		})
		want := strings.Join(lines, "\n")
		if len(lines) > 0 {
			want += "\n"
		}
		if written.String() != want {
			t.Fatalf("WriteDigestList wrote %q, want the input's lines sorted: %q", written.String(), want)
		}
	})
}
