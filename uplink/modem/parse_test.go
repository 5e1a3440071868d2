package modem

import (
	"errors"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		line string
		want error
	}{
		{"OK", nil},
		{"ERROR", ErrCommand},
		{"+CME ERROR: 30", &CMEError{Code: 30}},
		{"+CME ERROR:3", &CMEError{Code: 3}},
		{"+CME ERROR: SIM not inserted", &CMEError{Code: 10, Text: "SIM not inserted"}},
		{"+CME ERROR: something new", &CMEError{Code: -1, Text: "something new"}},
		{"+CMS ERROR: 500", &CMEError{Code: 500}},
		{"+CSQ: 1,2", nil},
	}
	for _, tt := range tests {
		got := parseError(tt.line)
		var gotCME, wantCME *CMEError
		switch {
		case errors.As(tt.want, &wantCME):
			if !errors.As(got, &gotCME) || *gotCME != *wantCME {
				t.Errorf("parseError(%q) = %v, want %v", tt.line, got, tt.want)
			}
		case !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil):
			t.Errorf("parseError(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestParseDataAccept(t *testing.T) {
	tests := []struct {
		line string
		n    int
		ok   bool
	}{
		{"DATA ACCEPT:5", 5, true},
		{"DATA ACCEPT: 5", 5, true},
		{"DATA ACCEPT:1460", 1460, true},
		{"DATA ACCEPT:", 0, false},
		{"DATA ACCEPT:-1", 0, false},
		{"DATA ACCEPT:0,10", 0, false}, // multi-connection form: not ours
		{"SEND OK", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseDataAccept(tt.line)
		if n != tt.n || ok != tt.ok {
			t.Errorf("parseDataAccept(%q) = %d, %v; want %d, %v", tt.line, n, ok, tt.n, tt.ok)
		}
	}
}

func TestParseRegistration(t *testing.T) {
	tests := []struct {
		line string
		want regReading
		ok   bool
	}{
		{"+CEREG: 0,1", regReading{stat: 1, act: -1}, true},
		{"+CEREG: 2,5,\"5B57\",\"195071B\",9", regReading{stat: 5, act: 9}, true},
		{"+CEREG: 4,1,\"5B57\",\"195071B\",9,,,\"00000000\",\"01100000\"", regReading{stat: 1, act: 9}, true},
		{"+CEREG: 1", regReading{}, false},                        // URC form
		{"+CEREG: 1,\"5B57\",\"195071B\",9", regReading{}, false}, // URC form with location
		{"+CEREG: x,1", regReading{}, false},
		{"+CGREG: 0, 3", regReading{stat: 3, act: -1}, true},
	}
	for _, tt := range tests {
		prefix := tt.line[:7]
		got, ok := parseRegistration(tt.line, prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRegistration(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClassifyURC(t *testing.T) {
	tests := []struct {
		line, cmd string
		name      string
		ok        bool
	}{
		{"+CIPRXGET: 1", "AT+CIPRXGET=2,100", urcRxData, true},
		{"+CIPRXGET: 1,0", "AT+CIPSTATUS", urcRxData, true},
		{"+CIPRXGET: 4,10", "AT+CIPRXGET=4", "", false},
		{"+CIPRXGET: 1", "AT+CIPRXGET?", "", false},
		{"CLOSED", "AT+CIPSEND=5", urcClosed, true},
		{"0, CLOSED", "", urcClosed, true},
		{"+PDP: DEACT", "AT+CIPSHUT", urcPDPDeact, true},
		{"RDY", "", urcRDY, true},
		{"SMS Ready", "AT", urcSMSReady, true},
		{"+CPIN: READY", "AT+CPIN?", "", false},
		{"+CPIN: NOT READY", "AT+CFUN=0", "+CPIN", true},
		{"+CEREG: 0,1", "AT+CEREG?", "", false},
		{"+CEREG: 1", "AT+CEREG?", "+CEREG", true},
		{"*PSUTTZ: 24/11/25,14:00:00", "AT+CIPSTART", "*PSUTTZ", true},
		{"OK", "AT", "", false},
		{"CLOSE OK", "AT+CIPCLOSE=1", "", false},
	}
	for _, tt := range tests {
		name, ok := classifyURC(tt.line, tt.cmd)
		if name != tt.name || ok != tt.ok {
			t.Errorf("classifyURC(%q, %q) = %q, %v; want %q, %v", tt.line, tt.cmd, name, ok, tt.name, tt.ok)
		}
	}
}

func TestQuoteArgAndCommandName(t *testing.T) {
	if _, err := quoteArg("apn", "ok.apn", 50); err != nil {
		t.Errorf("plain apn: %v", err)
	}
	for _, bad := range []string{`a"b`, "a\rb", "a\x00b", string(make([]byte, 51))} {
		if _, err := quoteArg("apn", bad, 50); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("quoteArg(%q) err = %v", bad, err)
		}
	}
	for cmd, want := range map[string]string{
		`AT+CSTT="apn","u","secret"`: "AT+CSTT",
		"AT+CIFSR;E0":                "AT+CIFSR",
		"AT+CPIN?":                   "AT+CPIN?",
		" AT ":                       "AT", //nolint:gocritic // the spaces are the input under test
	} {
		if got := commandName(cmd); got != want {
			t.Errorf("commandName(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestStepErrorTimeout(t *testing.T) {
	err := stepErr("AT+CSQ", ErrTimeout)
	var se *fault.StepError
	if !errors.As(err, &se) || !se.Timeout() || !se.Temporary() || err.Error() != "AT+CSQ: timeout" {
		t.Errorf("stepErr = %v", err)
	}
	if errors.As(stepErr("x", ErrCommand), &se) && se.Timeout() {
		t.Error("ErrCommand is not a timeout")
	}
	if stepErr("x", nil) != nil {
		t.Error("stepErr of nil must be nil")
	}
	if got := stepErr("AT+CSQ", err); got != err { //nolint:errorlint // identity: returned unchanged
		t.Error("the same step must not be wrapped twice")
	}
	if got := (&CMEError{Code: 30, Text: "no network service"}).Error(); got != "+CME ERROR: 30 (no network service)" {
		t.Errorf("CMEError = %q", got)
	}
}
