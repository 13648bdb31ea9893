package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/rooms"
)

// TestLinksRevokeCommune: a commune's leaked link is revoked from the
// terminal while a server runs on the same data; the server refuses it
// within its link memory (a second), the other commune's link still works,
// the list shows the state, the audit log the revocation.
func TestLinksRevokeCommune(t *testing.T) {
	geo := sharedGeo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	terr := []string{"--data", dir, "--territory", filepath.Join(geo, "communes-56-morbihan.geojson"),
		"--communes", filepath.Join(geo, "communes-56-morbihan-cog2021.csv")}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut)
		if err != nil {
			err = fmt.Errorf("%v: %s", err, errOut.String())
		}
		return out.String(), err
	}
	out, err := cli(append([]string{"links", "communes", "56121", "56003", "--format", "csv"}, terr...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(strings.NewReader(out))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("links communes: %q, %v", out, err)
	}
	tokens := map[string]string{rows[1][0]: rows[1][3], rows[2][0]: rows[2][3]}

	// A server on the same data dir, as `serve` would be.
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Territory, cfg.CommunesCSV = dir, terr[3], terr[5]
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	a, err := app.New(ctx, cfg, be, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	day := time.Now().In(a.Decl.Rules().Location).Format("2006-01-02")
	n := 0
	declare := func(code string) int {
		n++
		body := fmt.Sprintf(`{"commune":%q,"date":%q,"place":"domicile","count":1,"note":"","idempotency_key":"key-%d-%d"}`, code, day, n, time.Now().UnixNano())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/declarations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[code])
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := declare("56121"); got != http.StatusCreated {
		t.Fatalf("56121's link before the revocation: %d", got)
	}

	if out, err = cli("links", "list", "56121", "--data", dir); err != nil || !strings.Contains(out, "commune") || !strings.Contains(out, "active") {
		t.Fatalf("links list: %q, %v", out, err)
	}
	if out, err = cli("links", "revoke", "--commune", "56121", "--data", dir); err != nil || strings.Count(out, "revoked") != 1 {
		t.Fatalf("links revoke --commune: %q, %v", out, err)
	}
	start := time.Now()
	for declare("56121") != http.StatusUnauthorized {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the server still takes the revoked link 10 s later")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the running server refused the link %s after its revocation from the terminal", time.Since(start).Round(time.Millisecond))
	if got := declare("56003"); got != http.StatusCreated {
		t.Fatalf("the other commune's link after the revocation: %d", got)
	}

	if out, err = cli("links", "list", "56121", "--data", dir); err != nil || !strings.Contains(out, "revoked") || strings.Contains(out, "active") {
		t.Fatalf("links list after the revocation: %q, %v", out, err)
	}
	if _, err = cli("links", "revoke", "--commune", "56121", "--data", dir); err == nil || !strings.Contains(err.Error(), "no live link") {
		t.Fatalf("revoking a commune without live links: %v", err)
	}
	if _, err = cli("links", "revoke", "nope", "--data", dir); err == nil || !strings.Contains(err.Error(), `no link "nope"`) {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	if _, err = cli("links", "list", "--data", dir); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("links list without a scope: %v", err)
	}
	es, err := be.Store.Access().AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	l, err := be.Store.LinkByHash(ctx, rooms.HashSecret(tokens["56121"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || es[0].Action != "link_revoked" || es[0].Actor != "cli" || es[0].Target != l.ID {
		t.Fatalf("last audit entry %+v, want link_revoked of %s by cli", es, l.ID)
	}
}
