package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestMapFeedInNode runs the unit tests of the page's map feed (seq gaps,
// resync, reconnects, versions) with node's test runner: the browser test
// cannot make the server skip a delta, this can. Node comes with npm, which
// the front end needs anyway; a missing node fails.
func TestMapFeedInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (install nodejs and npm, as scripts/test.sh does): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", "js/mapfeed.test.mjs").CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("the map feed's unit tests failed: %v", err)
	}
}
