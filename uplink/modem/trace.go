package modem

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// redacted replaces every secret in the trace.
const redacted = "***"

// tracer logs the UART dialog. A nil *tracer logs nothing, so call sites
// need no checks.
type tracer struct {
	log *slog.Logger

	mu      sync.RWMutex
	secrets [][]byte
}

func newTracer(log *slog.Logger, secrets [][]byte) *tracer {
	if log == nil {
		return nil
	}
	t := &tracer{log: log}
	for _, s := range secrets {
		t.addSecret(s)
	}
	return t
}

// addSecret redacts s from now on. StartBearer adds the APN credentials
// itself, so they stay out of the trace even if the caller forgot them.
func (t *tracer) addSecret(s []byte) {
	if t == nil || len(s) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, known := range t.secrets {
		if bytes.Equal(known, s) {
			return
		}
	}
	t.secrets = append(t.secrets, bytes.Clone(s))
}

// line logs one line of text; a line that is not printable ASCII (line
// noise, a payload misread as text) is logged as hex.
func (t *tracer) line(dir, text string) {
	if t == nil {
		return
	}
	if !printable(text) {
		t.data(dir, []byte(text))
		return
	}
	t.mu.RLock()
	for _, s := range t.secrets {
		text = strings.ReplaceAll(text, string(s), redacted)
	}
	t.mu.RUnlock()
	t.log.LogAttrs(context.Background(), slog.LevelDebug, "at", slog.String("dir", dir),
		slog.Time("t", time.Now()), slog.String("text", text))
}

func (t *tracer) prompt() {
	if t == nil {
		return
	}
	t.log.LogAttrs(context.Background(), slog.LevelDebug, "at", slog.String("dir", "in"),
		slog.Time("t", time.Now()), slog.String("text", "> "))
}

// data logs a binary payload as hex with secrets masked.
func (t *tracer) data(dir string, b []byte) {
	if t == nil {
		return
	}
	t.dataMasked(dir, b, t.mask(b))
}

// dataMasked logs b as hex; bytes whose mask is set are shown as "***".
// Conn.Write computes the mask over a whole Write so a secret split
// between two CIPSEND chunks is still masked in both.
func (t *tracer) dataMasked(dir string, b []byte, mask []bool) {
	if t == nil {
		return
	}
	var sb strings.Builder
	sb.Grow(2 * len(b))
	for i := 0; i < len(b); {
		if mask != nil && mask[i] {
			sb.WriteString(redacted)
			for i < len(b) && mask[i] {
				i++
			}
			continue
		}
		j := i
		for j < len(b) && (mask == nil || !mask[j]) {
			j++
		}
		sb.WriteString(hex.EncodeToString(b[i:j]))
		i = j
	}
	t.log.LogAttrs(context.Background(), slog.LevelDebug, "at", slog.String("dir", dir),
		slog.Time("t", time.Now()), slog.Int("len", len(b)), slog.String("hex", sb.String()))
}

// mask marks every byte of b that belongs to a secret; nil when none does.
func (t *tracer) mask(b []byte) []bool {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var m []bool
	for _, s := range t.secrets {
		for off := 0; ; {
			i := bytes.Index(b[off:], s)
			if i < 0 {
				break
			}
			if m == nil {
				m = make([]bool, len(b))
			}
			for k := off + i; k < off+i+len(s); k++ {
				m[k] = true
			}
			off += i + 1
		}
	}
	return m
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
