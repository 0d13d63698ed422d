package examples_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tally-sig/tally/examples"
)

func ExampleWorkflow() {
	path, data, err := examples.Workflow("github")
	if err != nil {
		panic(err)
	}
	fmt.Println(path, bytes.Contains(data, []byte("tally check --repo .")))
	// Output: .github/workflows/tally-check.yml true
}

func TestWorkflowUnknownForge(t *testing.T) {
	t.Parallel()
	if _, _, err := examples.Workflow("gitlab"); err == nil {
		t.Error("a workflow for gitlab was returned")
	}
	for forge := range examples.Forges {
		if _, data, err := examples.Workflow(forge); err != nil || len(data) == 0 {
			t.Errorf("%s: %v", forge, err)
		}
	}
}
