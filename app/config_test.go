package app

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// TestClusterBeatSetting: the beat comes from the environment or the flag
// (the flag wins), and one outside 100ms–1m is refused.
func TestClusterBeatSetting(t *testing.T) {
	parse := func(args ...string) Config {
		t.Helper()
		c := DefaultConfig()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		envErr := c.Bind(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := envErr(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(); c.ClusterBeat != 2*time.Second || c.Validate() != nil {
		t.Fatalf("default beat %s, %v", c.ClusterBeat, c.Validate())
	}
	t.Setenv("CRISISROOM_CLUSTER_BEAT", "500ms")
	if c := parse(); c.ClusterBeat != 500*time.Millisecond {
		t.Fatalf("beat from the environment: %s", c.ClusterBeat)
	}
	if c := parse("--cluster-beat", "1s"); c.ClusterBeat != time.Second {
		t.Fatalf("beat from the flag over the environment: %s", c.ClusterBeat)
	}
	for _, bad := range []string{"50ms", "2m"} {
		c := parse("--cluster-beat", bad)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "cluster-beat") {
			t.Errorf("--cluster-beat %s: %v, want refused", bad, err)
		}
	}
}
