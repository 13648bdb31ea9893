package main

import (
	"bytes"
	"context"
	"crisisroom/internal/testgeo"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"crisisroom/territory"
)

// sharedGeo is the reference territory in testdata/geo (internal/testgeo).
func sharedGeo(t *testing.T) string { return testgeo.Dir(t) }

// TestTerritoryFetch runs `crisisroom territory fetch` against a loopback
// stand-in for geo.api.gouv.fr serving the real Morbihan boundaries, then
// loads the written file.
func TestTerritoryFetch(t *testing.T) {
	geo := sharedGeo(t)
	data, err := os.ReadFile(filepath.Join(geo, "communes-56-morbihan.geojson"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex // the handler runs on the server's goroutines
		requests []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.String())
		mu.Unlock()
		if r.URL.Path != "/departements/56/communes" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/geo+json")
		w.Write(data)
	}))
	defer srv.Close()

	out := filepath.Join(t.TempDir(), "morbihan.geojson")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"territory", "fetch", "--departement", "56", "--out", out, "--api-url", srv.URL}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("fetch: %v (stderr %s)", err, stderr.String())
	}
	mu.Lock()
	got := append([]string(nil), requests...)
	mu.Unlock()
	want := "/departements/56/communes?format=geojson&geometry=contour&fields=code,nom,population"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("requests = %q, want [%q]", got, want)
	}
	if !strings.Contains(stdout.String(), "253 communes") {
		t.Fatalf("stdout = %q", stdout.String())
	}
	written, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(written, data) {
		t.Fatalf("written file: %d bytes, %v; want the %d bytes served", len(written), err, len(data))
	}
	tr, err := territory.Load(context.Background(), out, filepath.Join(geo, "communes-56-morbihan-cog2021.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Communes) != 250 || tr.Population() != 759684 {
		t.Fatalf("loaded %d communes, population %d", len(tr.Communes), tr.Population())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".territory-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	// A failed fetch (wrong département at this server) leaves no file.
	bad := filepath.Join(t.TempDir(), "t.geojson")
	err = run(context.Background(), []string{"territory", "fetch", "--departement", "29", "--out", bad, "--api-url", srv.URL}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("fetch 29: err = %v, want a 404", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed fetch wrote %s", bad)
	}
	if err := run(context.Background(), []string{"territory", "fetch"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--departement is required") {
		t.Fatalf("no département: %v", err)
	}
}

func TestTerritoryCheck(t *testing.T) {
	geo := sharedGeo(t)
	var stdout, stderr bytes.Buffer
	args := []string{"territory", "check",
		"--territory", filepath.Join(geo, "communes-56-morbihan.geojson"),
		"--communes", filepath.Join(geo, "communes-56-morbihan-cog2021.csv")}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if s := stdout.String(); !strings.Contains(s, "250 communes, population 759684") {
		t.Fatalf("stdout = %q", s)
	}
	// The département outline is a single Feature, not a FeatureCollection.
	args = []string{"territory", "check", "--territory", filepath.Join(geo, "departement-56-morbihan.geojson")}
	err := run(context.Background(), args, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `top-level type is "Feature"`) {
		t.Fatalf("outline: err = %v", err)
	}
	if err := run(context.Background(), []string{"territory", "dance"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("unknown action: %v", err)
	}
}
