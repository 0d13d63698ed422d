package record

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
)

// DescribeRun records the facts that make a reproduction meaningful: the
// source tree's commit and whether it had uncommitted changes, and the
// machine the build ran on. sourceDir is any directory inside the source
// tree's git checkout; facts that cannot be found are "unknown".
func DescribeRun(sourceDir string, now time.Time, tallyVersion string) Run {
	run := Run{
		Time:     now.UTC().Truncate(time.Second),
		Source:   "unknown",
		Dirty:    "unknown",
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Tally:    tallyVersion,
	}
	run.CPUVendor, run.CPUModel = cpuInfo()
	if sourceDir == "" {
		return run
	}
	repo, err := git.PlainOpenWithOptions(sourceDir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return run
	}
	head, err := repo.Head()
	if err != nil {
		return run
	}
	run.Source = head.Hash().String()
	if wt, err := repo.Worktree(); err == nil {
		if st, err := wt.Status(); err == nil {
			run.Dirty = "no"
			if !st.IsClean() {
				run.Dirty = "yes"
			}
		}
	}
	return run
}

// cpuInfo reads the CPU vendor and model from /proc/cpuinfo where there is one.
func cpuInfo() (vendor, model string) {
	vendor, model = "unknown", "unknown"
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return vendor, model
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		switch {
		case k == "vendor_id" && vendor == "unknown" && v != "":
			vendor = v
		case (k == "model name" || k == "Model" || k == "cpu model") && model == "unknown" && v != "":
			model = v
		case k == "CPU implementer" && vendor == "unknown" && v != "":
			vendor = "arm-implementer-" + v
		}
		if vendor != "unknown" && model != "unknown" {
			break
		}
	}
	return vendor, model
}
