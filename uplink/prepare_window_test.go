package uplink_test

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// commandTrace is a slog.Handler that keeps the modem trace's text lines
// as "out <line>" / "in <line>", in order. When onLine is set it is called
// with each line as it is traced, so a test can sample the simulator at
// that moment.
type commandTrace struct {
	onLine func(line string)
	mu     sync.Mutex
	lines  []string
}

func (h *commandTrace) Enabled(context.Context, slog.Level) bool { return true }
func (h *commandTrace) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *commandTrace) WithGroup(string) slog.Handler            { return h }
func (h *commandTrace) Handle(_ context.Context, r slog.Record) error {
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
	if text != "" {
		line := dir + " " + text
		if h.onLine != nil {
			h.onLine(line)
		}
		h.mu.Lock()
		h.lines = append(h.lines, line)
		h.mu.Unlock()
	}
	return nil
}

func (h *commandTrace) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

var registrationDone = regexp.MustCompile(`^in \+C[EG]REG: \d,[15]\b`)

// Ensure a window on the NB-IoT profile (5 s attach, virtual clock)
// configures the IP stack, AT+CIPSHUT to AT+CSTT, while the module
// registers, activates the PDP context only after registration, and still
// delivers every reading; and that a module refusing AT+CSTT before the
// attach (an injected ERROR) costs the window nothing but the repeat.
func TestWindowPreparesBearerWhileRegistering(t *testing.T) {
	// Radio seconds from registration to CONNECT OK, by tt.again: the
	// stretch the preparation shortens, before any receive polling (which
	// follows the host's real timing) can blur it.
	toConnect := map[bool]float64{}
	prepared := []string{"AT+CIPSHUT", "AT+CIPMUX=0", "AT+CIPRXGET=1", "AT+CIPQSEND=1", "AT+CIPSENDHEX=0", "AT+CSTT="}
	for _, tt := range []struct {
		name   string
		faults modemsim.Faults
		again  bool // the whole sequence is repeated after registration
	}{
		{"prepared", modemsim.Faults{}, false},
		{"CSTT refused before the attach", modemsim.Faults{ErrorOn: "CSTT"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
			simCfg := modemsim.NBIoT()
			simCfg.VirtualClock = true
			simCfg.StartRadioOff = true
			simCfg.Faults = tt.faults
			sim := simtest.Start(t, simCfg)
			q, dir := openQueue(t)
			const n = 200
			enqueueReadings(t, q, n, 1)
			cfg := modemConfig(sim, broker.Addr(), dir)
			cfg.APNUser, cfg.APNPassword = "apn-user", "apn-pw-9"
			var connected atomic.Value // float64
			trace := &commandTrace{onLine: func(line string) {
				if line == "in CONNECT OK" {
					acc := sim.Accounting()
					connected.CompareAndSwap(nil, acc.RadioOnSeconds-acc.AttachSeconds)
				}
			}}
			cfg.Trace = slog.New(trace)
			cfg.RegistrationTimeout = 30 * time.Second
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil {
				t.Fatalf("window: %v", err)
			}
			if !sum.OK() || sum.Acked != n || depth(t, q) != 0 {
				t.Errorf("summary %+v, %d left queued", sum, depth(t, q))
			}
			if !broker.WaitCount(n, 5*time.Second) {
				t.Errorf("broker routed %d of %d", broker.Count(), n)
			}

			lines := trace.all()
			dump := strings.Join(lines, "\n")
			reg := slices.IndexFunc(lines, registrationDone.MatchString)
			if reg < 0 {
				t.Fatalf("no registration in the trace:\n%s", dump)
			}
			index := func(cmd string) (before, after int) {
				for i, l := range lines {
					if strings.HasPrefix(l, "out "+cmd) {
						if i < reg {
							before++
						} else {
							after++
						}
					}
				}
				return before, after
			}
			for _, cmd := range prepared {
				before, after := index(cmd)
				wantAfter := 0
				if tt.again {
					wantAfter = 1
				}
				if cmd == "AT+CIPSHUT" {
					wantAfter++ // the close's
				}
				if before != 1 || after != wantAfter {
					t.Errorf("%s: %d before registration, %d after; want 1 and %d", cmd, before, after, wantAfter)
				}
			}
			if before, after := index("AT+CIICR"); before != 0 || after != 1 {
				t.Errorf("AT+CIICR: %d before registration, %d after; want 0 and 1", before, after)
			}
			if strings.Contains(dump, cfg.APNPassword) {
				t.Error("the trace shows the APN password")
			}
			acc := sim.Accounting()
			t.Logf("radio on %.2f s, of which attach %.2f s; %d AT commands", acc.RadioOnSeconds, acc.AttachSeconds, acc.ATCommands)
			if acc.TCPConnections != 1 {
				t.Errorf("%d TCP connections, want 1", acc.TCPConnections)
			}
			v, ok := connected.Load().(float64)
			if !ok {
				t.Fatalf("no CONNECT OK in the trace:\n%s", dump)
			}
			toConnect[tt.again] = v
		})
	}
	// The six commands cost their turnaround (50 ms) and UART time each
	// after registration, nothing during the attach: about 0.3 s. Five
	// turnarounds are asked, so that noticing the registration (it follows
	// the host's polling) may vary between runs without failing the test.
	if len(toConnect) != 2 {
		return // a window failed, and said so
	}
	saved := toConnect[true] - toConnect[false]
	t.Logf("radio seconds from registration to CONNECT OK: %.3f prepared, %.3f not (%.3f s saved)", toConnect[false], toConnect[true], saved)
	if want := 5 * modemsim.NBIoT().Turnaround.Seconds(); saved < want {
		t.Errorf("preparing saved %.3f radio seconds, want at least %.3f", saved, want)
	}
}
