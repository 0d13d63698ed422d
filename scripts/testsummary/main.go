// Command testsummary reads go test -json on standard input and prints what
// go test prints without -v (package lines and the output of failing tests),
// plus every skipped test with its reason, so that a skipped interop test is
// seen, and a closing count:
//
//	go test -json ./... | go run ./scripts/testsummary
//
// It exits 1 when a test, a package or a build failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of go test -json (cmd/test2json), with the build events
// go test adds.
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail events
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize copies the summary of the event stream r to w and reports
// whether anything failed.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	output := map[key][]string{} // a test's output until it ends
	var skipped []string
	var passed, failedTests int
	var failedPkgs []string
	pkgHadFailure := map[string]bool{} // packages with a failed test
	pkgOnlyFailures := 0               // failed packages without a failed test

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go's own error before any package ran): show it.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" {
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
			failedPkgs = append(failedPkgs, e.Package)
			if !pkgHadFailure[e.Package] {
				pkgOnlyFailures++ // failed to build, set up or finish
			}
			// Tests that never ended (a timeout, a crash): show their output.
			for _, k := range sortedKeys(output) {
				if k.pkg == e.Package {
					fmt.Fprintf(w, "unfinished %s %s:\n%s", k.pkg, k.test, strings.Join(output[k], ""))
					delete(output, k)
				}
			}
		case e.Test == "":
		case e.Action == "output":
			output[k] = append(output[k], e.Output)
		case e.Action == "pass":
			passed++
			delete(output, k)
		case e.Action == "fail":
			failedTests++
			pkgHadFailure[e.Package] = true
			failed = true
			fmt.Fprint(w, strings.Join(output[k], ""))
			delete(output, k)
		case e.Action == "skip":
			skipped = append(skipped, fmt.Sprintf("%s %s:\n%s", e.Package, e.Test, reason(output[k])))
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}

	if len(skipped) > 0 {
		sort.Strings(skipped)
		fmt.Fprintf(w, "\nskipped tests (%d):\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprint(w, s)
		}
	}
	if len(failedPkgs) > 0 {
		fmt.Fprintf(w, "\nfailed packages: %s\n", strings.Join(failedPkgs, " "))
		if pkgOnlyFailures > 0 {
			fmt.Fprintf(w, "(%d of them failed to build, set up or finish: each counts as one failed test)\n", pkgOnlyFailures)
		}
	}
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", passed, failedTests+pkgOnlyFailures, len(skipped))
	return failed, nil
}

// key names one test.
type key struct{ pkg, test string }

// sortedKeys returns m's keys in order, so that output is stable.
func sortedKeys(m map[key][]string) []key {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].pkg < keys[j].pkg || keys[i].pkg == keys[j].pkg && keys[i].test < keys[j].test
	})
	return keys
}

// reason returns a skipped test's own output lines (its t.Log and t.Skip
// messages), without the === and --- lines that frame them.
func reason(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		b.WriteString(l)
	}
	if b.Len() == 0 {
		return "    (no reason given)\n"
	}
	return b.String()
}
