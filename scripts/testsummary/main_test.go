package main

import (
	"os"
	"strings"
	"testing"
)

func TestSummarizeFailures(t *testing.T) {
	in, err := os.Open("testdata/fail.json")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out strings.Builder
	failed, err := summarize(in, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a failing run was not reported as failed")
	}
	got := out.String()
	for _, want := range []string{
		"cannot use \"s\"",                         // build output
		"FAIL\tskipx/c [build failed]",             // package line
		"b_test.go:3: boom",                        // failing test's output
		"b_test.go:3: some log",                    // its parent's log
		"skipx/a TestX:\n",                         // the skipped test
		"a_test.go:3: INTEROP SKIPPED: x",          // and its reason
		"failed packages: skipx/c skipx/a",         // both failures
		"\ntests: 1 passed, 3 failed, 1 skipped\n", // 2 tests and a build
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "--- PASS: TestY") {
		t.Errorf("summary shows a passing test's output:\n%s", got)
	}
	if !strings.HasSuffix(got, "tests: 1 passed, 3 failed, 1 skipped\n") {
		t.Errorf("the count is not the closing line:\n%s", got)
	}
}

func TestSummarizePassAndUnfinished(t *testing.T) {
	const pass = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`
	var out strings.Builder
	failed, err := summarize(strings.NewReader(pass), &out)
	if err != nil || failed {
		t.Fatalf("passing run: failed %v, err %v", failed, err)
	}
	if want := "ok  \tp\t0.1s\n\ntests: 1 passed, 0 failed, 0 skipped\n"; out.String() != want {
		t.Errorf("passing run summary %q, want %q", out.String(), want)
	}

	const timeout = `{"Action":"run","Package":"q","Test":"TestSlow"}
{"Action":"output","Package":"q","Test":"TestSlow","Output":"    slow_test.go:9: waiting for the registry\n"}
{"Action":"output","Package":"q","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"q"}
`
	out.Reset()
	failed, err = summarize(strings.NewReader(timeout), &out)
	if err != nil || !failed {
		t.Fatalf("timed-out run: failed %v, err %v", failed, err)
	}
	for _, want := range []string{
		"panic: test timed out",
		"unfinished q TestSlow:\n    slow_test.go:9: waiting for the registry",
		"tests: 0 passed, 1 failed, 0 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timed-out run summary lacks %q:\n%s", want, out.String())
		}
	}
}
