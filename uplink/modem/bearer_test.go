package modem

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

var bearerSteps = []step{
	{cmd: "AT+CIPSHUT", reply: "\r\n+PDP: DEACT\r\n\r\nSHUT OK\r\n"},
	{cmd: "AT+CIPMUX=0", reply: "\r\nOK\r\n"},
	{cmd: "AT+CIPRXGET=1", reply: "\r\nOK\r\n"},
	{cmd: "AT+CIPQSEND=1", reply: "\r\nOK\r\n"},
	{cmd: "AT+CIPSENDHEX=0", reply: "\r\nERROR\r\n"},
	{cmd: `AT+CSTT="nbiot","user","pa55"`, reply: "\r\nOK\r\n"},
	{cmd: "AT+CIICR", reply: "\r\nOK\r\n"},
	{cmd: "AT+CIFSR", reply: "\r\n10.78.245.128\r\n"},
}

// Ensure the bearer comes up through the CIP stack's odd answers:
// +PDP: DEACT before SHUT OK, CIFSR answered by a bare address.
func TestStartBearer(t *testing.T) {
	m, _ := newScripted(t, Options{QuickSend: true}, bearerSteps...)
	ip, err := m.StartBearer(t.Context(), "nbiot", "user", "pa55")
	if err != nil {
		t.Fatalf("StartBearer: %v", err)
	}
	if ip != "10.78.245.128" {
		t.Errorf("ip = %q", ip)
	}
}

func TestStartBearerFailures(t *testing.T) {
	t.Run("quote in apn", func(t *testing.T) {
		m, f := newScripted(t, Options{})
		_, err := m.StartBearer(t.Context(), `a"b`, "", "")
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
		m.Close()
		<-f.done
		if len(f.cmds()) != 0 {
			t.Errorf("commands sent for an invalid APN: %q", f.cmds())
		}
	})
	t.Run("ciicr fails", func(t *testing.T) {
		steps := append([]step{}, bearerSteps[:5]...)
		steps = append(steps,
			step{cmd: `AT+CSTT="nbiot"`, reply: "\r\nOK\r\n"},
			step{cmd: "AT+CIICR", reply: "\r\n+CME ERROR: pdp authentication failure\r\n"})
		steps[3] = step{cmd: "AT+CIPQSEND=0", reply: "\r\nOK\r\n"}
		m, _ := newScripted(t, Options{}, steps...)
		_, err := m.StartBearer(t.Context(), "nbiot", "", "")
		var cme *CMEError
		var se *fault.StepError
		if !errors.As(err, &cme) || cme.Code != 149 || !errors.As(err, &se) || se.Step != "AT+CIICR" {
			t.Errorf("err = %v, want CME 149 at AT+CIICR", err)
		}
	})
	t.Run("cifsr error", func(t *testing.T) {
		steps := append([]step{}, bearerSteps[:7]...)
		steps = append(steps, step{cmd: "AT+CIFSR", reply: "\r\nERROR\r\n"})
		m, _ := newScripted(t, Options{QuickSend: true}, steps...)
		_, err := m.StartBearer(t.Context(), "nbiot", "user", "pa55")
		if !errors.Is(err, ErrCommand) || !strings.HasPrefix(err.Error(), "AT+CIFSR: ") {
			t.Errorf("err = %v, want AT+CIFSR: error", err)
		}
	})
}

func TestDial(t *testing.T) {
	const start = `AT+CIPSTART="TCP","broker.example",1883`
	sendq := step{cmd: "AT+CIPSEND?", reply: "\r\n+CIPSEND: 1460\r\n\r\nOK\r\n"}
	tests := []struct {
		name      string
		opts      Options
		steps     []step
		wantErr   error
		wantChunk int
	}{
		{"connect ok after other URCs", Options{}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\n*PSUTTZ: 24/11/25,14:00:00\"+04\",0\r\n\r\n+CIPRXGET: 1\r\n\r\nCONNECT OK\r\n"},
			sendq,
		}, nil, 1460},
		{"send limit lowers the chunk", Options{SendLimit: 512}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\nCONNECT OK\r\n"}, sendq,
		}, nil, 512},
		{"module limit below the cap", Options{SendLimit: 1400}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\nCONNECT OK\r\n"},
			{cmd: "AT+CIPSEND?", reply: "\r\n+CIPSEND: 1024\r\n\r\nOK\r\n"},
		}, nil, 1024},
		{"unreadable limit falls back", Options{}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\nCONNECT OK\r\n"},
			{cmd: "AT+CIPSEND?", reply: "\r\nERROR\r\n"},
		}, nil, fallbackSendChunk},
		{"state line before connect fail", Options{}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n"},
		}, ErrConnectFail, 0},
		{"error then already connect", Options{}, []step{
			{cmd: start, reply: "\r\nERROR\r\n\r\nALREADY CONNECT\r\n"},
		}, ErrAlreadyConnected, 0},
		{"already connect alone", Options{}, []step{
			{cmd: start, reply: "\r\nALREADY CONNECT\r\n"},
		}, ErrAlreadyConnected, 0},
		{"plain error", Options{}, []step{{cmd: start, reply: "\r\nERROR\r\n"}}, ErrCommand, 0},
		{"pdp lost while connecting", Options{}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\n+PDP: DEACT\r\n"},
		}, ErrPDPDeact, 0},
		{"reboot while connecting", Options{}, []step{
			{cmd: start, reply: "\r\nOK\r\n\r\nRDY\r\n"},
		}, ErrRebooted, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newScripted(t, tt.opts, tt.steps...)
			c, err := m.Dial(t.Context(), "broker.example", 1883)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				var se *fault.StepError
				if !errors.As(err, &se) || se.Step != "AT+CIPSTART" {
					t.Errorf("err = %v, want a *fault.StepError for AT+CIPSTART", err)
				}
				return
			}
			if c.MaxChunk() != tt.wantChunk {
				t.Errorf("MaxChunk = %d, want %d", c.MaxChunk(), tt.wantChunk)
			}
			if got := c.RemoteAddr().String(); got != "broker.example:1883" {
				t.Errorf("RemoteAddr = %q", got)
			}
		})
	}
}

func TestDialInvalid(t *testing.T) {
	m, _ := newScripted(t, Options{})
	for _, tt := range []struct {
		host string
		port int
	}{{"", 1883}, {`a"b`, 1883}, {"h\r\nAT", 1883}, {"h", 0}, {"h", 70000}} {
		if _, err := m.Dial(t.Context(), tt.host, tt.port); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Dial(%q, %d) err = %v, want ErrInvalidArgument", tt.host, tt.port, err)
		}
	}
}

func TestExec(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		reply   string
		want    Response
		wantErr error
	}{
		{"plain ok", "AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n", Response{Lines: []string{"+CSQ: 20,99"}, Final: "OK"}, nil},
		{"cifsr without ok", "AT+CIFSR", "\r\n10.0.0.7\r\n", Response{Final: "10.0.0.7"}, nil},
		{"cifsr chained with E0", "AT+CIFSR;E0", "\r\n10.0.0.7\r\n\r\nOK\r\n", Response{Lines: []string{"10.0.0.7"}, Final: "OK"}, nil},
		{"cipstatus ok before state, URC inside", "AT+CIPSTATUS",
			"\r\nOK\r\n\r\n+CIPRXGET: 1\r\n\r\nSTATE: CONNECT OK\r\n",
			Response{Lines: []string{"+CIPRXGET: 1", "OK"}, Final: "STATE: CONNECT OK"}, nil},
		{"cipstatus ok last", "AT+CIPSTATUS", "\r\nSTATE: IP INITIAL\r\n\r\nOK\r\n",
			Response{Lines: []string{"STATE: IP INITIAL"}, Final: "OK"}, nil},
		{"shut ok", "AT+CIPSHUT", "\r\n+PDP: DEACT\r\n\r\nSHUT OK\r\n", Response{Lines: []string{"+PDP: DEACT"}, Final: "SHUT OK"}, nil},
		{"cipstart waits for the result", `AT+CIPSTART="TCP","h",1`, "\r\nOK\r\n\r\nCONNECT FAIL\r\n",
			Response{Lines: []string{"OK"}, Final: "CONNECT FAIL"}, ErrConnectFail},
		{"echo skipped", "AT+CGMR", "AT+CGMR\r\r\nRevision:1351B05SIM7000E\r\n\r\nOK\r\n",
			Response{Lines: []string{"Revision:1351B05SIM7000E"}, Final: "OK"}, nil},
		{"cme numeric", "AT+CGATT=1", "\r\n+CME ERROR: 30\r\n", Response{Final: "+CME ERROR: 30"}, &CMEError{Code: 30}},
		{"cme verbose", "AT+CGATT=1", "\r\n+CME ERROR: no network service\r\n",
			Response{Final: "+CME ERROR: no network service"}, &CMEError{Code: 30, Text: "no network service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newScripted(t, Options{}, step{cmd: tt.cmd, reply: tt.reply})
			got, err := m.Exec(t.Context(), tt.cmd, 0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Exec = %#v, want %#v", got, tt.want)
			}
			var wantCME *CMEError
			if errors.As(tt.wantErr, &wantCME) {
				var cme *CMEError
				if !errors.As(err, &cme) || *cme != *wantCME {
					t.Errorf("err = %v, want %v", err, wantCME)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// Ensure a command without a final answer fails by its own timeout, as a
// net.Error timeout, and the next command still works.
func TestExecTimeout(t *testing.T) {
	m, _ := newScripted(t, Options{},
		step{cmd: "AT+CGATT?", reply: "\r\n+CGATT: 1\r\n"},
		step{cmd: "AT", reply: "\r\nOK\r\n"},
	)
	_, err := m.Exec(t.Context(), "AT+CGATT?", 150*1e6)
	var ne net.Error
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want ErrTimeout as net.Error", err)
	}
	if _, err := m.Exec(t.Context(), "AT", 0); err != nil {
		t.Errorf("next command: %v", err)
	}
}

func TestExecRefusesPayloadCommands(t *testing.T) {
	m, _ := newScripted(t, Options{})
	for _, cmd := range []string{"AT+CIPSEND=5", "AT+CIPSEND", "hello", "AT\r\nAT"} {
		if _, err := m.Exec(t.Context(), cmd, 0); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Exec(%q) err = %v, want ErrInvalidArgument", cmd, err)
		}
	}
}

// Ensure an empty APN sends the exec form AT+CSTT, so the module's stored
// APN applies, and credentials without an APN are refused.
func TestStartBearerEmptyAPN(t *testing.T) {
	steps := append([]step{}, bearerSteps...)
	steps[5] = step{cmd: "AT+CSTT", reply: "\r\nOK\r\n"}
	m, _ := newScripted(t, Options{QuickSend: true}, steps...)
	if _, err := m.StartBearer(t.Context(), "", "", ""); err != nil {
		t.Fatalf("StartBearer: %v", err)
	}
	if _, err := m.StartBearer(t.Context(), "", "user", "pw"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("credentials without APN: %v, want ErrInvalidArgument", err)
	}
}
