package certs

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger, for certmagic, that writes to l.
//
// certmagic logs every step of an ACME order at Info ("trying to solve
// challenge", "served key authentication", ...); those become Debug
// here, so that fe-php's log at Info holds only the lines Manager writes
// itself (obtaining, obtained, renewed, failed) while certmagic's
// warnings and errors keep their level.
func newZapLogger(l *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{logger: l}).Named("certmagic")
}

// slogCore is a zapcore.Core that hands each entry to a slog.Logger.
type slogCore struct {
	logger *slog.Logger
	fields []zapcore.Field // from With, encoded at Write
}

// slogLevel maps zap's levels to slog's, demoting Info to Debug (see
// newZapLogger).
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.InfoLevel:
		return slog.LevelDebug
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.logger.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{logger: c.logger, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	// zap's map encoder turns every field type (errors, arrays, objects,
	// durations) into plain Go values that slog can print.
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys) // maps have no order; logs should
	for _, k := range keys {
		r.AddAttrs(slog.Any(k, enc.Fields[k]))
	}
	return c.logger.Handler().Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }
