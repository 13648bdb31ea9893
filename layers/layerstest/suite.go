// Package layerstest is the conformance suite every layers.Store must pass.
package layerstest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"crisisroom/layers"
)

// Run runs the suite; newStore returns a fresh, empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) layers.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	geo := []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[-2.76,47.66]},"properties":{"nom":"EHPAD Les Tilleuls"}}]}`)
	layer := func(id string, at time.Time) layers.Layer {
		return layers.Layer{ID: id, Name: "EHPAD du Morbihan", Features: 1, Bytes: int64(len(geo)), Author: "ARS",
			AuthorID: "link-1", Created: at}
	}

	t.Run("CreateListGeoJSON", func(t *testing.T) {
		st := newStore(t)
		for i, id := range []string{"l2", "l1"} {
			if err := st.Create(ctx, layer(id, t0.Add(time.Duration(i)*time.Minute)), geo); err != nil {
				t.Fatal(err)
			}
		}
		list, err := st.List(ctx)
		if err != nil || len(list) != 2 || list[0] != layer("l2", t0) || list[1].ID != "l1" {
			t.Fatalf("list = %+v, %v (want oldest first, fields kept)", list, err)
		}
		got, err := st.GeoJSON(ctx, "l1")
		if err != nil || !bytes.Equal(got, geo) {
			t.Fatalf("geojson = %s, %v (want the bytes as stored)", got, err)
		}
		if _, err := st.GeoJSON(ctx, "nope"); !errors.Is(err, layers.ErrNotFound) {
			t.Fatalf("unknown layer: %v", err)
		}
		if err := st.Create(ctx, layer("l1", t0), geo); err == nil {
			t.Fatal("a second layer with the same id was stored")
		}
	})

	t.Run("Delete", func(t *testing.T) {
		st := newStore(t)
		if err := st.Create(ctx, layer("l1", t0), geo); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "l1"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "l1"); !errors.Is(err, layers.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := st.GeoJSON(ctx, "l1"); !errors.Is(err, layers.ErrNotFound) {
			t.Fatalf("deleted layer's geojson: %v", err)
		}
		if list, err := st.List(ctx); err != nil || len(list) != 0 {
			t.Fatalf("list after delete = %+v, %v", list, err)
		}
	})
}
