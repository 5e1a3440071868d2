package modem_test

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// traceLines is a slog.Handler that keeps the "at" trace records as
// "out <line>" / "in <line>", in order.
type traceLines struct {
	mu    sync.Mutex
	lines []string
}

func (h *traceLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *traceLines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *traceLines) WithGroup(string) slog.Handler            { return h }
func (h *traceLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "at" {
		return nil
	}
	var dir, text string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "dir":
			dir = a.Value.String()
		case "text":
			text = a.Value.String()
		}
		return true
	})
	if text == "" {
		return nil // binary payloads
	}
	h.mu.Lock()
	h.lines = append(h.lines, dir+" "+text)
	h.mu.Unlock()
	return nil
}

func (h *traceLines) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

// registeredAnswer is a registration query's answer with stat 1 or 5.
var registeredAnswer = regexp.MustCompile(`^in \+C[EG]REG: \d,[15]\b`)

// outIndexes returns the positions of the command lines starting with
// prefix.
func outIndexes(lines []string, prefix string) []int {
	var at []int
	for i, l := range lines {
		if strings.HasPrefix(l, "out "+prefix) {
			at = append(at, i)
		}
	}
	return at
}

// Ensure, on the simulator with a 5 s attach, that PrepareBearer's
// commands are answered before registration completes and StartBearer
// then only activates; and that when the module refuses AT+CSTT before the
// attach (an injected ERROR), the window still gets its bearer: StartBearer
// runs the whole sequence after registration.
func TestSimulatorPrepareBearer(t *testing.T) {
	tests := []struct {
		name      string
		faults    modemsim.Faults
		wantCSTTs int  // AT+CSTT lines sent in all
		csttEarly bool // the first one before registration
		prepared  bool
	}{
		{"prepared before the attach", modemsim.Faults{}, 1, true, true},
		{"CSTT refused before the attach", modemsim.Faults{ErrorOn: "CSTT"}, 2, true, false},
		{"CIPRXGET refused before the attach", modemsim.Faults{ErrorOn: "CIPRXGET"}, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, port := echoListener(t)
			cfg := modemsim.NBIoT()
			cfg.VirtualClock = true
			cfg.Baud = 0
			cfg.StartRadioOff = true
			cfg.Faults = tt.faults
			trace := &traceLines{}
			sim, m := startSim(t, cfg, modem.Options{QuickSend: true, Trace: slog.New(trace)})
			ctx := t.Context()
			if err := m.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.SetFunctionality(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := m.SIMStatus(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.PrepareBearer(ctx, "nbiot", "user", "secret"); err != nil {
				t.Fatalf("PrepareBearer: %v", err)
			}
			if _, err := m.WaitRegistered(ctx, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := m.StartBearer(ctx, "nbiot", "user", "secret"); err != nil {
				t.Fatalf("StartBearer: %v", err)
			}
			c, err := m.Dial(ctx, host, port)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}

			lines := trace.all()
			reg := slices.IndexFunc(lines, registeredAnswer.MatchString)
			if reg < 0 {
				t.Fatalf("no registered answer in the trace:\n%s", strings.Join(lines, "\n"))
			}
			cstts := outIndexes(lines, "AT+CSTT")
			shuts := outIndexes(lines, "AT+CIPSHUT")
			ciicrs := outIndexes(lines, "AT+CIICR")
			if len(cstts) != tt.wantCSTTs || (cstts[0] < reg) != tt.csttEarly {
				t.Errorf("AT+CSTT at %v, registered at %d; want %d, the first before registration: %v",
					cstts, reg, tt.wantCSTTs, tt.csttEarly)
			}
			if shuts[0] > reg {
				t.Errorf("first AT+CIPSHUT at %d, after registration at %d", shuts[0], reg)
			}
			if len(ciicrs) != 1 || ciicrs[0] < reg {
				t.Errorf("AT+CIICR at %v, registered at %d; want once, after registration", ciicrs, reg)
			}
			// Prepared: the stack is configured once, before registration
			// (the last AT+CIPSHUT is the close's). Otherwise StartBearer
			// configures it again after registration.
			wantShuts := 3
			if tt.prepared {
				wantShuts = 2
			}
			if len(shuts) != wantShuts {
				t.Errorf("%d AT+CIPSHUT, want %d:\n%s", len(shuts), wantShuts, strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				if strings.Contains(l, "secret") {
					t.Errorf("trace leaks the APN password: %q", l)
				}
			}
			if got := sim.Accounting().TCPConnections; got != 1 {
				t.Errorf("%d TCP connections, want 1", got)
			}
		})
	}
}
