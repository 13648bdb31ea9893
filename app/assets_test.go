package app

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"crisisroom/static"
)

// TestPagesAssetsServed: every asset a page references (scripts, styles,
// the vendored Leaflet, icons) is served by the binary as built: a page
// that loads must not miss a file that only npm would have put there.
// The ES modules' own imports are walked too.
func TestPagesAssetsServed(t *testing.T) {
	_, srv := startApp(t, mapConfig(t, true))
	ref := regexp.MustCompile(`(?:src|href)="(/[^"#?]+)"|from '(\./[^']+|\.\./[^']+)'|import\('(\./[^']+)'\)`)
	pages, err := fs.Glob(static.Files, "*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("pages %v, %v", pages, err)
	}
	seen := map[string]bool{}
	var queue []string
	for _, p := range pages {
		queue = append(queue, "/"+p)
	}
	checked := 0
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		body, ok := fetchAsset(t, srv, path)
		if !ok {
			continue
		}
		checked++
		if !strings.HasSuffix(path, ".html") && !strings.HasSuffix(path, ".js") {
			continue
		}
		dir := path[:strings.LastIndexByte(path, '/')+1]
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			switch {
			case m[1] != "":
				queue = append(queue, m[1])
			case m[2] != "":
				queue = append(queue, resolve(dir, m[2]))
			case m[3] != "":
				queue = append(queue, resolve(dir, m[3]))
			}
		}
	}
	if !seen["/vendor/leaflet/leaflet.js"] || !seen["/js/room.js"] {
		t.Fatalf("the walk did not reach Leaflet or the room's module: %d paths", len(seen))
	}
	t.Logf("%d pages and assets served", checked)
}

// fetchAsset GETs a page path ("/x.html" is served as a file of static/).
func fetchAsset(t *testing.T, srv *httptest.Server, path string) (string, bool) {
	t.Helper()
	if strings.HasSuffix(path, ".html") { // the pages sit at their routes, their files under static
		b, err := fs.ReadFile(static.Files, strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return "", false
		}
		return string(b), true
	}
	res, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("%s: %d, want 200 (a page references it)", path, res.StatusCode)
		return "", false
	}
	return b.String(), true
}

// resolve joins a module's relative import with its directory.
func resolve(dir, rel string) string {
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, seg)
		}
	}
	return "/" + strings.Join(parts, "/")
}
