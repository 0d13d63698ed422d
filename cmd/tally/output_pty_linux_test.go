package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tally-sig/tally/internal/sample"
)

// openPTY opens a pseudo-terminal pair: the controlling side to read what
// the program draws and the terminal it draws on.
func openPTY(t *testing.T) (control, term *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(control.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("numbering the pty: %v", err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's terminal: %v", err)
	}
	return control, term
}

// TestSignDrawsProgressOnATerminal runs tally sign with standard error on a
// real pseudo-terminal and reads what it drew: a bar that ends full and is
// erased, while standard output keeps the short summary.
func TestSignDrawsProgressOnATerminal(t *testing.T) {
	control, term := openPTY(t)
	defer control.Close()
	drawn := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		_, err := io.Copy(&buf, control)
		if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the terminal side closed
			t.Errorf("reading the pty: %v", err)
		}
		drawn <- buf.Bytes()
	}()

	keys := keyFiles(t)
	dir := t.TempDir()
	repo, out := filepath.Join(dir, "sigs"), filepath.Join(dir, "out")
	mustTally(t, "init", "--repo", repo, "--threshold", "1", "--key-file", filepath.Join(keys, "bob.pub.asc"))
	if _, err := sample.Write(out, sample.Many(40, "pty")...); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	code := run(context.Background(), []string{"tally", "sign", "--repo", repo, "--release", "1.0", "--out", out,
		"--key", filepath.Join(keys, "bob.sec.asc")}, strings.NewReader(""), &stdout, term)
	term.Close()
	screen := string(<-drawn)
	if code != 0 {
		t.Fatalf("tally sign: exit %d\n%s%s", code, stdout.String(), screen)
	}
	if !strings.Contains(screen, "\rsigning [") {
		t.Errorf("no progress bar on the terminal: %q", screen)
	}
	if !strings.Contains(screen, "\rsigning [==============================] 40/40") {
		t.Errorf("the bar never showed 40/40: %q", screen)
	}
	if !strings.HasSuffix(screen, "\r\033[K") {
		t.Errorf("the bar was not erased at the end: %q", screen)
	}
	if !strings.Contains(stdout.String(), "40 new signature(s)") || strings.Contains(stdout.String(), "\r") {
		t.Errorf("standard output:\n%s", stdout.String())
	}
}
