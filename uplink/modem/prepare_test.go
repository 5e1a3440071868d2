package modem

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// The bearer in two parts: bearerSteps[:6] is the preparation (CIPSHUT,
// whose "+PDP: DEACT" before SHUT OK is the shut's own, up to CSTT),
// bearerSteps[6:] the activation.
var (
	prepareSteps  = bearerSteps[:6]
	activateSteps = bearerSteps[6:]
	registered    = step{cmd: "AT+CEREG?", reply: "\r\n" + registeredLine + "\r\n\r\nOK\r\n"}
)

// registeredLine carries the access technology, so WaitRegistered does not
// ask AT+COPS? for it.
const registeredLine = `+CEREG: 2,1,"5B57","195071B",9`

// registeredWith is the registration answer with lines the module sends
// unsolicited in front of it.
func registeredWith(urc string) step {
	return step{cmd: "AT+CEREG?", reply: "\r\n" + urc + "\r\n\r\n" + registeredLine + "\r\n\r\nOK\r\n"}
}

func concat(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func cmdLines(steps []step) []string {
	var lines []string
	for _, s := range steps {
		lines = append(lines, s.cmd)
	}
	return lines
}

// Ensure StartBearer after PrepareBearer sends only AT+CIICR and AT+CIFSR,
// unless something that may have changed the IP state came in between:
// then it runs the whole sequence from AT+CIPSHUT again. Each script is the
// exact order of commands the module must see.
func TestPrepareBearer(t *testing.T) {
	const apn, user, pass = "nbiot", "user", "pa55"
	tests := []struct {
		name   string
		steps  []step
		middle func(ctx context.Context, m *Modem) error // between the two
		apn    string                                    // StartBearer's; apn when empty
		regErr error                                     // WaitRegistered's expected error
	}{
		{name: "prepared: activation only",
			steps: concat(prepareSteps, []step{registered}, activateSteps)},
		{name: "harmless URCs keep the preparation",
			steps: concat(prepareSteps, []step{
				registeredWith("*PSUTTZ: 24/11/25,14:00:00\"+04\",0\r\n\r\n+CPIN: READY\r\n\r\n+CEREG: 1"),
			}, activateSteps)},
		{name: "+PDP: DEACT voids it",
			steps: concat(prepareSteps, []step{registeredWith("+PDP: DEACT")}, bearerSteps)},
		{name: "SMS Ready voids it",
			steps: concat(prepareSteps, []step{registeredWith("SMS Ready")}, bearerSteps)},
		{name: "+CFUN: URC voids it",
			steps: concat(prepareSteps, []step{registeredWith("+CFUN: 0")}, bearerSteps)},
		{name: "+CPIN: NOT READY voids it",
			steps: concat(prepareSteps, []step{registeredWith("+CPIN: NOT READY")}, bearerSteps)},
		{name: "RDY voids it",
			steps:  concat(prepareSteps, []step{{cmd: "AT+CEREG?", reply: "\r\nRDY\r\n"}}, bearerSteps),
			regErr: ErrRebooted},
		{name: "a URC during the preparation voids it",
			steps: concat(prepareSteps[:1],
				[]step{{cmd: "AT+CIPMUX=0", reply: "\r\n+PDP: DEACT\r\n\r\nOK\r\n"}},
				prepareSteps[2:], []step{registered}, bearerSteps)},
		{name: "CFUN toggled voids it",
			steps: concat(prepareSteps, []step{
				{cmd: "AT+CFUN=0", reply: "\r\nOK\r\n"},
				{cmd: "AT+CFUN=1", reply: "\r\nOK\r\n"},
				registered,
			}, bearerSteps),
			middle: func(ctx context.Context, m *Modem) error {
				if err := m.SetFunctionality(ctx, 0); err != nil {
					return err
				}
				return m.SetFunctionality(ctx, 1)
			}},
		{name: "a raw command voids it",
			steps: concat(prepareSteps, []step{
				{cmd: "AT+CIPSTATUS", reply: "\r\nOK\r\n\r\nSTATE: IP START\r\n"},
				registered,
			}, bearerSteps),
			middle: func(ctx context.Context, m *Modem) error {
				_, err := m.Exec(ctx, "AT+CIPSTATUS", 0)
				return err
			}},
		{name: "another APN starts over",
			steps: concat(prepareSteps, []step{registered}, bearerSteps[:5], []step{
				{cmd: `AT+CSTT="other"`, reply: "\r\nOK\r\n"},
			}, activateSteps),
			apn: "other"},
		{name: "activation refused after the preparation: whole sequence once more",
			steps: concat(prepareSteps, []step{
				registered,
				{cmd: "AT+CIICR", reply: "\r\nERROR\r\n"},
			}, bearerSteps)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			opts := Options{QuickSend: true, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			opts.Trace = opts.Logger
			m, f := newScripted(t, opts, tt.steps...)
			// A script the driver does not follow leaves it waiting for
			// an answer: end that well before the long bearer timeouts.
			ctx, cancel := context.WithTimeout(t.Context(), waitSafety)
			defer cancel()
			if err := m.PrepareBearer(ctx, apn, user, pass); err != nil {
				t.Fatalf("PrepareBearer: %v", err)
			}
			if tt.middle != nil {
				if err := tt.middle(ctx, m); err != nil {
					t.Fatalf("between: %v", err)
				}
			}
			if _, err := m.WaitRegistered(ctx, time.Second); !errors.Is(err, tt.regErr) {
				t.Fatalf("WaitRegistered: %v, want %v", err, tt.regErr)
			}
			startAPN, startUser, startPass := apn, user, pass
			if tt.apn != "" {
				startAPN, startUser, startPass = tt.apn, "", ""
			}
			ip, err := m.StartBearer(ctx, startAPN, startUser, startPass)
			if err != nil {
				t.Fatalf("StartBearer: %v", err)
			}
			if ip != "10.78.245.128" {
				t.Errorf("ip = %q", ip)
			}
			if got, want := f.allCmds(t, m), cmdLines(tt.steps); !slices.Equal(got, want) {
				t.Errorf("commands:\n got %q\nwant %q", got, want)
			}
			if strings.Contains(logs.String(), pass) {
				t.Errorf("the APN password is in the log or trace:\n%s", logs.String())
			}
		})
	}
}

// Ensure a preparation the module refuses with an error answer is not a
// failure: nothing is recorded, and StartBearer runs the whole sequence.
// Errors that are not the module's answer are returned.
func TestPrepareBearerRefused(t *testing.T) {
	tests := []struct {
		name string
		fail int    // index in prepareSteps of the command that fails
		err  string // its answer
	}{
		{"CSTT ERROR", 5, "\r\nERROR\r\n"},
		{"CSTT CME error", 5, "\r\n+CME ERROR: operation not allowed\r\n"},
		{"CIPMUX ERROR", 1, "\r\nERROR\r\n"},
		{"CIPSHUT ERROR", 0, "\r\nERROR\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused := append([]step{}, prepareSteps[:tt.fail+1]...)
			refused[tt.fail].reply = tt.err
			steps := concat(refused, []step{registered}, bearerSteps)
			var logs testkit.SyncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			m, f := newScripted(t, Options{QuickSend: true, Logger: log}, steps...)
			ctx, cancel := context.WithTimeout(t.Context(), waitSafety)
			defer cancel()
			if err := m.PrepareBearer(ctx, "nbiot", "user", "pa55"); err != nil {
				t.Fatalf("PrepareBearer: %v, want nil for a refusal", err)
			}
			if _, err := m.WaitRegistered(ctx, time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := m.StartBearer(ctx, "nbiot", "user", "pa55"); err != nil {
				t.Fatalf("StartBearer: %v", err)
			}
			if got, want := f.allCmds(t, m), cmdLines(steps); !slices.Equal(got, want) {
				t.Errorf("commands:\n got %q\nwant %q", got, want)
			}
			out := logs.String()
			if !strings.Contains(out, "level=DEBUG msg=\"bearer preparation refused") {
				t.Errorf("no debug line for the refusal:\n%s", out)
			}
			if strings.Contains(out, "pa55") {
				t.Errorf("the APN password is logged:\n%s", out)
			}
		})
	}

	t.Run("invalid APN", func(t *testing.T) {
		m, f := newScripted(t, Options{})
		if err := m.PrepareBearer(t.Context(), `a"b`, "", ""); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
		if cmds := f.allCmds(t, m); len(cmds) != 0 {
			t.Errorf("commands sent for an invalid APN: %q", cmds)
		}
	})
	t.Run("reboot during the preparation", func(t *testing.T) {
		steps := append([]step{}, prepareSteps[:3]...)
		steps[2].reply = "\r\nRDY\r\n"
		m, _ := newScripted(t, Options{QuickSend: true}, steps...)
		if err := m.PrepareBearer(t.Context(), "nbiot", "user", "pa55"); !errors.Is(err, ErrRebooted) {
			t.Errorf("err = %v, want ErrRebooted", err)
		}
	})
}
