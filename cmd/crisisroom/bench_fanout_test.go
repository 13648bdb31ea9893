package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// asBinary makes the test binary act as the crisisroom binary: bench
// fanout starts its server as a child process of os.Executable(), which
// under `go test` is this test binary.
const asBinary = "CRISISROOM_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		main() // exits non-zero on error
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchFanout runs the command as a user would, small (200 watchers,
// 20 declarations): the server is a child process, the watchers real
// WebSocket clients, and every watcher must get every declaration. Timing
// is printed, not asserted: the machine is shared.
func TestBenchFanout(t *testing.T) {
	if geo, _ := defaultGeoFiles(); geo == "" {
		t.Fatal("testdata/geo (the Morbihan communes) not found in the repository")
	}
	t.Setenv(asBinary, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"bench", "fanout", "--watchers", "200", "--declarations", "20", "--rate", "50", "--timeout", "90s"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	t.Log(out.String())
	text := out.String()
	for _, want := range []string{
		"subscribed: 200 watchers",
		"posted: 20 declarations",
		"delivery: 4000 of 4000 = 100.00 % (seq gaps 0, sockets closed by the server 0,",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^rss_per_conn_kib=(\d+\.\d)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no rss_per_conn_kib=X line: the child's memory was not measured")
	}
	if kib, _ := strconv.ParseFloat(m[1], 64); kib <= 0 {
		t.Errorf("rss_per_conn_kib=%v", kib)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if !regexp.MustCompile(`^fanout_p99_ms=\d+\.\d$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q is not fanout_p99_ms=X", lines[len(lines)-1])
	}
}

// TestBenchFanoutInstances runs `bench fanout --instances 2`: two servers
// (child processes) on a throwaway PostgreSQL and Redis, watchers spread
// over both, declarations posted to A. Every watcher, B's included, must
// get every declaration; each instance's memory is measured; the
// cross-instance figure comes before fanout_p99_ms=X, still last.
func TestBenchFanoutInstances(t *testing.T) {
	if geo, _ := defaultGeoFiles(); geo == "" {
		t.Fatal("testdata/geo (the Morbihan communes) not found in the repository")
	}
	t.Setenv(asBinary, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"bench", "fanout", "--instances", "2", "--watchers", "100", "--declarations", "10", "--rate", "50", "--timeout", "90s"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	t.Log(out.String())
	text := out.String()
	for _, want := range []string{
		"2 instances sharing PostgreSQL and Redis",
		"subscribed: 100 watchers",
		": A 50, B 50\n",
		"posted: 10 declarations",
		"delivery: 1000 of 1000 = 100.00 % (seq gaps 0, sockets closed by the server 0,",
		"instance A (declarations posted here): 50 watchers, delivery 500 of 500,",
		"instance B (through Redis): 50 watchers, delivery 500 of 500,",
		"cross-instance latency (201 from A → receipt by a watcher on B): p50=",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, name := range []string{"A", "B"} {
		re := regexp.MustCompile(`(?m)^server RSS of ` + name + `: (\d+\.\d) MiB idle, (\d+\.\d) MiB with 50 watchers subscribed`)
		if m := re.FindStringSubmatch(text); m == nil {
			t.Errorf("instance %s's memory not measured", name)
		} else if idle, _ := strconv.ParseFloat(m[1], 64); idle <= 0 {
			t.Errorf("instance %s: idle RSS %v MiB", name, idle)
		}
	}
	if !regexp.MustCompile(`(?m)^rss_per_conn_kib=-?\d+\.\d$`).MatchString(text) {
		t.Error("no rss_per_conn_kib=X line")
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if n := len(lines); n < 3 || !regexp.MustCompile(`^cross_instance_p99_ms=\d+\.\d$`).MatchString(lines[n-3]) {
		t.Errorf("no cross_instance_p99_ms=X line before the last ones: %q", lines[max(n-3, 0):])
	}
	if !regexp.MustCompile(`^fanout_p99_ms=\d+\.\d$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q is not fanout_p99_ms=X", lines[len(lines)-1])
	}
}

// TestBenchFanoutFlags: bad combinations are refused before anything starts.
func TestBenchFanoutFlags(t *testing.T) {
	// Refused by the flags' check itself (the error says which), before
	// anything starts: a child run would fail for other reasons.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--watchers", "0"}, "--watchers"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--url", "http://127.0.0.1:1"}, "--url needs --token"},
		{[]string{"--instances", "0"}, "--instances between"},
		{[]string{"--instances", "2", "--watchers", "1"}, "every instance needs a watcher"},
		{[]string{"--instances", "2", "--url", "http://127.0.0.1:1", "--token", "x"}, "--instances starts its own cluster"}, // a running server is one instance
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"bench", "fanout"}, c.args...), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
