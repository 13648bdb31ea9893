package sqlite

import (
	"testing"

	"crisisroom/layers"
	"crisisroom/layers/layerstest"
)

func TestLayersConformance(t *testing.T) {
	layerstest.Run(t, func(t *testing.T) layers.Store { return open(t).Layers() })
}
