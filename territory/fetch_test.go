package territory

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveDir serves the files of dir over loopback HTTP.
func serveDir(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// FakeGeoAPI serves the real Morbihan boundaries the way geo.api.gouv.fr
// does, and only for the exact request the fetch must make.
func fakeGeoAPI(t *testing.T, prefix string) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(geoDir(t), realGeoJSON))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != prefix+"/departements/56/communes" || q.Get("format") != "geojson" ||
			q.Get("geometry") != "contour" || q.Get("fields") != "code,nom,population" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/geo+json")
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetch(t *testing.T) {
	srv := fakeGeoAPI(t, "/v1")
	data, tr, err := Fetch(context.Background(), srv.URL+"/v1/", "56")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Communes) != 253 || len(data) != 510084 {
		t.Fatalf("%d communes, %d bytes", len(tr.Communes), len(data))
	}
	// The right file from the wrong département is refused.
	other := fakeGeoAPI(t, "")
	mux := http.NewServeMux()
	mux.HandleFunc("/departements/29/communes", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/departements/56/communes"
		http.Redirect(w, r, other.URL+r.URL.String(), http.StatusFound)
	})
	wrong := httptest.NewServer(mux)
	defer wrong.Close()
	_, _, err = Fetch(context.Background(), wrong.URL, "29")
	if err == nil || !strings.Contains(err.Error(), "not in département 29") {
		t.Fatalf("wrong département: %v", err)
	}
	_, _, err = Fetch(context.Background(), srv.URL, "56") // no /v1 prefix: 404
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func TestDepartementURL(t *testing.T) {
	u, err := DepartementURL(DefaultAPI, "56")
	if err != nil || u != "https://geo.api.gouv.fr/departements/56/communes?format=geojson&geometry=contour&fields=code,nom,population" {
		t.Fatalf("%s %v", u, err)
	}
	for _, ok := range []string{"01", "2A", "2B", "95", "971", "976"} {
		if _, err := DepartementURL(DefaultAPI, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "5", "00", "20", "2C", "977", "560", "56 ", "a6"} {
		if _, err := DepartementURL(DefaultAPI, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"ftp://x", "geo.api.gouv.fr", "http://", "://x"} {
		if _, err := DepartementURL(bad, "56"); err == nil {
			t.Errorf("API %q accepted", bad)
		}
	}
}
