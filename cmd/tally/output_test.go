package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressDrawsThrottledAndClears(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := &progress{w: &buf, label: "signing", on: true}

	p.Update(1, 30) // the first update draws at once
	if got, want := buf.String(), "\rsigning [=                             ] 1/30"; got != want {
		t.Errorf("first draw %q, want %q", got, want)
	}
	buf.Reset()
	p.Update(2, 30) // within 100ms of the last draw: nothing
	if buf.Len() != 0 {
		t.Errorf("redrawn within the throttle: %q", buf.String())
	}
	p.last = time.Now().Add(-time.Second)
	p.Update(15, 30)
	if got, want := buf.String(), "\rsigning [===============               ] 15/30"; got != want {
		t.Errorf("draw at half %q, want %q", got, want)
	}
	buf.Reset()
	p.Update(30, 30) // the end always draws
	if got, want := buf.String(), "\rsigning [==============================] 30/30"; got != want {
		t.Errorf("last draw %q, want %q", got, want)
	}
	buf.Reset()
	p.Done()
	if got := buf.String(); got != "\r\033[K" {
		t.Errorf("Done wrote %q, want a carriage return and erase-line", got)
	}
	buf.Reset()
	p.Done() // nothing drawn since
	if buf.Len() != 0 {
		t.Errorf("second Done wrote %q", buf.String())
	}
}

func TestProgressSilentWhenSmallOrNotATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	small := &progress{w: &buf, label: "signing", on: true}
	for i := 1; i <= 19; i++ {
		small.Update(i, 19)
	}
	small.Done()
	if buf.Len() != 0 {
		t.Errorf("a bar for 19 signatures: %q", buf.String())
	}

	notTTY := newProgress(&buf, "signing")
	for i := 1; i <= 50; i++ {
		notTTY.Update(i, 50)
	}
	notTTY.Done()
	if buf.Len() != 0 || strings.Contains(buf.String(), "\r") {
		t.Errorf("a bar on a buffer: %q", buf.String())
	}
}
