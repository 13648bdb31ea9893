package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"crisisroom/territory"
)

const territoryUsage = `usage:
  crisisroom territory fetch --departement 56 [--out territory-56.geojson] [--api-url URL]
      download the commune boundaries of a département from the French geo API
  crisisroom territory check --territory FILE|URL [--communes FILE|URL]
      load and validate boundaries (and a commune list), print a summary`

// territoryCmd: crisisroom territory fetch|check.
func territoryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(territoryUsage)
	}
	switch args[0] {
	case "fetch":
		return territoryFetch(ctx, args[1:], stdout, stderr)
	case "check":
		return territoryCheck(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, territoryUsage)
		return nil
	}
	return fmt.Errorf("territory: unknown action %q\n%s", args[0], territoryUsage)
}

func territoryFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("territory fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dep := fs.String("departement", "", "département code, e.g. 56, 2A, 974 (required)")
	out := fs.String("out", "", "file to write (default territory-DEP.geojson)")
	api := fs.String("api-url", territory.DefaultAPI, "base URL of the geo API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("territory fetch: unexpected argument %q", fs.Arg(0))
	}
	if *dep == "" {
		return errors.New("territory fetch: --departement is required, e.g. --departement 56")
	}
	if *out == "" {
		*out = "territory-" + *dep + ".geojson"
	}
	data, t, err := territory.Fetch(ctx, *api, *dep)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, data); err != nil {
		return fmt.Errorf("territory fetch: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d communes of département %s, population %d (%d bytes)\n",
		*out, len(t.Communes), *dep, t.Population(), len(data))
	return nil
}

func territoryCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("territory check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	geo := fs.String("territory", "", "commune boundaries: GeoJSON file or http(s) URL (required)")
	list := fs.String("communes", "", "optional commune list: CSV file or http(s) URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("territory check: unexpected argument %q", fs.Arg(0))
	}
	if *geo == "" {
		return errors.New("territory check: --territory is required")
	}
	t, err := territory.Load(ctx, *geo, *list)
	if err != nil {
		return err
	}
	multi := 0
	for _, c := range t.Communes {
		if bytes.HasPrefix(c.Geometry, []byte(`{"type":"MultiPolygon"`)) {
			multi++
		}
	}
	fmt.Fprintf(stdout, "%s: %d communes, population %d, %d drawn as MultiPolygon, GeoJSON %d bytes\n",
		t.Source, len(t.Communes), t.Population(), multi, len(t.GeoJSON()))
	return nil
}

// writeFileAtomic writes through a temporary file in the same directory and
// renames it, so an interrupted fetch never leaves a truncated territory.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".territory-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
