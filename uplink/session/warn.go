package session

import "log/slog"

// warnOnce logs a condition that repeats per record (a QoS downgrade, say) at
// warning level the first time and at debug level afterwards, so one window
// does not flood a board's log.
type warnOnce map[string]bool

func (w *warnOnce) log(l *slog.Logger, kind, msg string, args ...any) {
	if *w == nil {
		*w = make(map[string]bool)
	}
	if (*w)[kind] {
		l.Debug(msg, args...)
		return
	}
	(*w)[kind] = true
	l.Warn(msg, args...)
}
