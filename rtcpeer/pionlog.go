package rtcpeer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends pion's logs to the Node's logger instead of stderr:
// pion reports ordinary teardown races (a data channel opening as its
// PeerConnection closes) at error level, which would clutter test and
// benchmark output.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

// levelTrace sits below Debug: pion traces every packet.
const levelTrace = slog.LevelDebug - 4

func (l pionLogger) Trace(msg string)          { l.logf(levelTrace, "%s", msg) }
func (l pionLogger) Tracef(f string, a ...any) { l.logf(levelTrace, f, a...) }
func (l pionLogger) Debug(msg string)          { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(f string, a ...any) { l.logf(slog.LevelDebug, f, a...) }
func (l pionLogger) Info(msg string)           { l.logf(slog.LevelInfo, "%s", msg) }
func (l pionLogger) Infof(f string, a ...any)  { l.logf(slog.LevelInfo, f, a...) }
func (l pionLogger) Warn(msg string)           { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Warnf(f string, a ...any)  { l.logf(slog.LevelWarn, f, a...) }
func (l pionLogger) Error(msg string)          { l.logf(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(f string, a ...any) { l.logf(slog.LevelError, f, a...) }
