package main

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tally-sig/tally/buildout"
	"github.com/tally-sig/tally/release/record"
	"github.com/tally-sig/tally/sigstore"
)

// TestHostileInputsBounded gives tally the largest hostile input of each
// kind it reads from others (a signature file, a compression bomb inside
// one, a build record, an OCI index, a git object) and checks that each is
// reported as a problem or refused with a clear error, never a crash or an
// out-of-memory kill. It logs each run's peak memory (the child's maximum
// resident set), the numbers README's "Limits" section quotes.
func TestHostileInputsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes inputs of hundreds of megabytes; not in -short")
	}
	e := newCrashEnv(t)
	w := e.work
	sigs := filepath.Join(w, "sigs")
	e.must(w, e.tal, "init", "--repo", sigs, "--threshold", "1", "--key-file", "alice.pub.asc", "--key-file", "bob.pub.asc")
	e.must(w, e.tal, "sign", "--repo", sigs, "--release", "1.0", "--key", "alice.sec.asc", "--out", "out")
	sigDir := ""
	for _, f := range strings.Fields(e.must(sigs, "git", "ls-files", "stagex")) {
		if strings.Contains(f, "core-p00@") {
			sigDir = filepath.Dir(f)
		}
	}
	if sigDir == "" {
		t.Fatal("no signature of core-p00")
	}

	// commitFile commits data at path in a copy of sigs and returns the copy.
	commitFile := func(path string, data []byte) string {
		t.Helper()
		dir := copyTree(t, sigs)
		repo := filepath.Join(dir)
		full := filepath.Join(repo, path)
		must(t, os.MkdirAll(filepath.Dir(full), 0o777))
		must(t, os.WriteFile(full, data, 0o666))
		e.must(repo, "git", "add", path)
		e.must(repo, "git", "commit", "-q", "-m", "hostile "+path)
		e.must(repo, "git", "repack", "-a", "-d", "-q")
		return repo
	}

	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, zlib.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 256 { // 256 MiB of zeros, 64 times the limit
		_, _ = zw.Write(zeros)
	}
	must(t, zw.Close())
	var pgpBomb bytes.Buffer
	pgpBomb.WriteByte(0xC8) // new-format compressed data packet
	writeNewLength(&pgpBomb, 1+bomb.Len())
	pgpBomb.WriteByte(2) // ZLIB
	pgpBomb.Write(bomb.Bytes())

	big := make([]byte, sigstore.MaxSignatureSize+1)
	_, _ = rand.Read(big)

	run := "# tally build record: a \"run\" line per tally sign, then one line per image platform it built\n" +
		"run time=2026-11-28T18:40:00Z source=x dirty=no platform=linux/amd64 cpu-vendor=v cpu-model=m tally=1\n"
	line := strings.Repeat("a", 64) + " core-p00 1.0 linux/amd64\n"
	overRecord := run + strings.Repeat(line, record.MaxBuildRecordSize/len(line)+1)
	largest := run + strings.Repeat(line, (record.MaxBuildRecordSize-len(run))/len(line))

	// An OCI layout whose index.json is just over the manifest limit, and
	// one at the limit listing one manifest many thousand times.
	hostileOut := filepath.Join(w, "hostile-out")
	must(t, os.MkdirAll(filepath.Join(hostileOut, "core-big"), 0o777))
	must(t, os.WriteFile(filepath.Join(hostileOut, "core-big", "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o666))
	must(t, os.WriteFile(filepath.Join(hostileOut, "core-big", "index.json"), bytes.Repeat([]byte(" "), buildout.MaxManifestSize+1), 0o666))
	manyOut := filepath.Join(w, "many-out")
	src, _ := os.ReadDir(filepath.Join(w, "out"))
	if len(src) == 0 {
		t.Fatal("no sample layouts")
	}
	layout := filepath.Join(manyOut, "core-many")
	must(t, os.MkdirAll(manyOut, 0o777))
	if out, err := exec.Command("cp", "-a", filepath.Join(w, "out", src[len(src)-1].Name()), layout).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	idx, err := os.ReadFile(filepath.Join(layout, "index.json"))
	must(t, err)
	var doc map[string]any
	must(t, json.Unmarshal(idx, &doc))
	entries, _ := doc["manifests"].([]any)
	if len(entries) == 0 {
		t.Fatalf("unexpected index.json: %s", idx)
	}
	one, _ := json.Marshal(entries[0])
	n := buildout.MaxManifestSize / (len(one) + 1)
	copies := make([]any, 0, n)
	for len(copies) < n-1 {
		copies = append(copies, entries[0])
	}
	doc["manifests"] = copies
	many, err := json.Marshal(doc)
	must(t, err)
	if len(many) > buildout.MaxManifestSize {
		t.Fatalf("index.json of %d bytes, over the limit", len(many))
	}
	must(t, os.WriteFile(filepath.Join(layout, "index.json"), many, 0o666))

	cases := []struct {
		name  string
		setup func() (dir string, args []string)
		codes []int  // acceptable exit codes
		want  string // in the output
	}{
		{"baseline: the repository as signed", func() (string, []string) {
			return sigs, []string{"status", "--repo", sigs}
		}, []int{0}, "quorum met"},
		{"signature file of 4 MiB + 1", func() (string, []string) {
			d := commitFile(sigDir+"/signature-2", big)
			return d, []string{"status", "--repo", d}
		}, []int{2}, "signature-2"},
		{"compressed signature inflating to 256 MiB", func() (string, []string) {
			d := commitFile(sigDir+"/signature-2", pgpBomb.Bytes())
			return d, []string{"status", "--repo", d}
		}, []int{2}, "decompresses to more than"},
		{"build record of 16 MiB + 1 line", func() (string, []string) {
			d := commitFile("builds/1.0/"+testkeysFingerprint("bob")+".txt", []byte(overRecord))
			return d, []string{"status", "--repo", d}
		}, []int{0, 1}, "more than the 16777216"},
		{"build record just under 16 MiB (accepted)", func() (string, []string) {
			d := commitFile("builds/1.0/"+testkeysFingerprint("bob")+".txt", []byte(largest))
			return d, []string{"status", "--repo", d}
		}, []int{0, 1}, ""},
		{"OCI index.json of 4 MiB + 1", func() (string, []string) {
			return sigs, []string{"sign", "--repo", copyTree(t, sigs), "--release", "2.0", "--key", filepath.Join(w, "alice.sec.asc"), "--out", hostileOut}
		}, []int{65}, "too large"},
		{"OCI index.json of 4 MiB listing one manifest many times", func() (string, []string) {
			return sigs, []string{"sign", "--repo", copyTree(t, sigs), "--release", "2.0", "--key", filepath.Join(w, "alice.sec.asc"), "--out", manyOut}
		}, []int{0, 65}, ""},
		{"git object of 257 MiB (over gitstore's object limit)", func() (string, []string) {
			d := commitFile(sigDir+"/signature-2", make([]byte, 257<<20))
			return d, []string{"status", "--repo", d}
		}, []int{2, 65}, ""},
	}
	var table []string
	for _, c := range cases {
		dir, args := c.setup()
		cmd := exec.Command(e.tal, args...)
		cmd.Dir = dir
		peakFile := filepath.Join(t.TempDir(), "peak")
		cmd.Env = append(append([]string{}, e.env...), peakEnv+"="+peakFile)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		st := cmd.ProcessState.Sys().(syscall.WaitStatus)
		peak, _ := os.ReadFile(peakFile)
		rss, _ := strconv.Atoi(strings.TrimSpace(string(peak))) // KiB
		switch {
		case st.Signaled():
			t.Errorf("%s: killed by %v (out of memory?)\n%s", c.name, st.Signal(), tail(out.String()))
		case strings.Contains(out.String(), "panic:") || strings.Contains(out.String(), "goroutine "):
			t.Errorf("%s: crashed\n%s", c.name, tail(out.String()))
		case !contains(c.codes, st.ExitStatus()):
			t.Errorf("%s: exit %d (%v), want one of %v\n%s", c.name, st.ExitStatus(), err, c.codes, tail(out.String()))
		case c.want != "" && !strings.Contains(out.String(), c.want):
			t.Errorf("%s: output lacks %q\n%s", c.name, c.want, tail(out.String()))
		}
		first := strings.SplitN(strings.TrimSpace(out.String()), "\n", 2)[0]
		table = append(table, fmt.Sprintf("%-58s exit %2d  peak RSS %4d MiB  %.120s", c.name, st.ExitStatus(), rss>>10, first))
	}
	t.Logf("hostile inputs:\n%s", strings.Join(table, "\n"))
}

// peakEnv names a file that the tally the tests run writes its peak memory
// to (VmHWM of /proc/self/status, in KiB) as it exits. The rusage of the
// child cannot tell: on Linux its ru_maxrss keeps the test process's high
// water mark across the exec.
const peakEnv = "TALLY_TEST_PEAK_FILE"

func reportPeakMemory() {
	path := os.Getenv(peakEnv)
	if path == "" {
		return
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			_ = os.WriteFile(path, []byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))), 0o666)
		}
	}
}

// writeNewLength writes an OpenPGP new-format five-octet body length.
func writeNewLength(b *bytes.Buffer, n int) {
	b.WriteByte(0xFF)
	b.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func contains(codes []int, c int) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
