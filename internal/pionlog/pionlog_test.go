package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestCeiling: pion's levels pass unchanged without a ceiling, and a
// ceiling lowers the louder ones (a teardown "error" becomes debug).
func TestCeiling(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	New(log).NewLogger("ice").Errorf("failed %d", 1)
	Factory{Log: log, Ceiling: slog.LevelDebug}.NewLogger("dtls").Error("closed pipe")
	New(log).NewLogger("ice").Trace("every packet")
	out := buf.String()
	if !strings.Contains(out, "level=ERROR msg=\"failed 1\" pion=ice") {
		t.Errorf("an error without a ceiling: %q", out)
	}
	if strings.Contains(out, "closed pipe") || strings.Contains(out, "every packet") {
		t.Errorf("a capped error or a trace got through at info: %q", out)
	}
}
