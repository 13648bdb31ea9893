package memory

import (
	"testing"

	"crisisroom/bus"
	"crisisroom/bus/bustest"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus {
		b := New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
