// Package pionlog sends pion's logs (ICE, DTLS, TURN, interceptors) to a
// slog.Logger instead of stderr, each under its pion scope. pion reports
// ordinary teardown races (a channel opening as its connection closes) at
// error level: a ceiling lowers what one component's pion may say.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace sits below Debug: pion traces every packet.
const LevelTrace = slog.LevelDebug - 4

// Factory is a pion logging.LoggerFactory. Ceiling is the highest level
// passed on (NoCeiling: pion's own levels, as New makes it).
type Factory struct {
	Log     *slog.Logger
	Ceiling slog.Level
}

// NoCeiling passes pion's levels unchanged.
const NoCeiling = slog.Level(1 << 10)

// New is a Factory that passes pion's levels unchanged.
func New(log *slog.Logger) Factory { return Factory{Log: log, Ceiling: NoCeiling} }

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope), ceiling: f.Ceiling}
}

type logger struct {
	log     *slog.Logger
	ceiling slog.Level
}

func (l logger) emitf(level slog.Level, format string, args ...any) {
	level = min(level, l.ceiling)
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(msg string)          { l.emitf(LevelTrace, "%s", msg) }
func (l logger) Tracef(f string, a ...any) { l.emitf(LevelTrace, f, a...) }
func (l logger) Debug(msg string)          { l.emitf(slog.LevelDebug, "%s", msg) }
func (l logger) Debugf(f string, a ...any) { l.emitf(slog.LevelDebug, f, a...) }
func (l logger) Info(msg string)           { l.emitf(slog.LevelInfo, "%s", msg) }
func (l logger) Infof(f string, a ...any)  { l.emitf(slog.LevelInfo, f, a...) }
func (l logger) Warn(msg string)           { l.emitf(slog.LevelWarn, "%s", msg) }
func (l logger) Warnf(f string, a ...any)  { l.emitf(slog.LevelWarn, f, a...) }
func (l logger) Error(msg string)          { l.emitf(slog.LevelError, "%s", msg) }
func (l logger) Errorf(f string, a ...any) { l.emitf(slog.LevelError, f, a...) }
