package modem

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// Ensure Sync keeps probing through silence, line noise and echo, then
// turns echo off and selects verbose errors.
func TestSync(t *testing.T) {
	m, f := newScripted(t, Options{},
		step{cmd: "AT", reply: ""},                                           // autobaud: first probe lost
		step{cmd: "AT", reply: "\x00\xff\x13garbage"},                        // wrong-rate noise, no terminator
		step{cmd: "AT", reply: "AT\r\r\nOK\r\n"},                             // echo still on
		step{cmd: "AT+CMEE?", reply: "AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n"}, // resynchronised
		step{cmd: "ATE0", reply: "ATE0\r\r\nOK\r\n"},                         // echoed once more
		step{cmd: "AT+CMEE=2", reply: "\r\n+CPIN: READY\r\n\r\nOK\r\n"},      // a URC on the way
	)
	if err := m.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	m.Close()
	<-f.done
	want := []string{"AT", "AT", "AT", "AT+CMEE?", "ATE0", "AT+CMEE=2"}
	if !reflect.DeepEqual(f.cmds(), want) {
		t.Errorf("commands = %q, want %q", f.cmds(), want)
	}
}

// Ensure Sync gives up within its context and says so as a timeout.
func TestSyncNoAnswer(t *testing.T) {
	m, _ := newScripted(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Sync(ctx)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Sync err = %v, want ErrTimeout", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Sync err %v is not a net.Error timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Sync took %v despite a 700ms context", d)
	}
}

func TestSIMStatus(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantStatus string
		wantCode   int // CME code expected in the error chain; 0: none
		wantErr    error
	}{
		{"ready", []step{{cmd: "AT+CPIN?", reply: "\r\n+CPIN: READY\r\n\r\nOK\r\n"}}, "READY", 0, nil},
		{"pin required", []step{{cmd: "AT+CPIN?", reply: "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"}}, "SIM PIN", 0, ErrSIMNotReady},
		{"not inserted numeric", []step{{cmd: "AT+CPIN?", reply: "\r\n+CME ERROR: 10\r\n"}}, "10", 10, ErrSIMNotReady},
		{"not inserted verbose", []step{{cmd: "AT+CPIN?", reply: "\r\n+CME ERROR: SIM not inserted\r\n"}}, "SIM not inserted", 10, ErrSIMNotReady},
		{"late boot URCs inside the answer", []step{
			{cmd: "AT+CPIN?", reply: "\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n"},
		}, "READY", 0, nil},
		{"reboot during the query", []step{{cmd: "AT+CPIN?", reply: "\r\nRDY\r\n"}}, "", 0, ErrRebooted},
		{"busy then ready", []step{
			{cmd: "AT+CPIN?", reply: "\r\n+CME ERROR: SIM busy\r\n"},
			{cmd: "AT+CPIN?", reply: "\r\n+CPIN: READY\r\n\r\nOK\r\n"},
		}, "READY", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newScripted(t, Options{}, tt.steps...)
			status, err := m.SIMStatus(t.Context())
			if status != tt.wantStatus {
				t.Errorf("status = %q, want %q", status, tt.wantStatus)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			var cme *CMEError
			if tt.wantCode != 0 && (!errors.As(err, &cme) || cme.Code != tt.wantCode) {
				t.Errorf("err = %v, want CME code %d", err, tt.wantCode)
			}
			var se *fault.StepError
			if err != nil && (!errors.As(err, &se) || se.Step != "AT+CPIN?") {
				t.Errorf("err = %v, want a *fault.StepError for AT+CPIN?", err)
			}
		})
	}
}

func TestSignalQualityAndFunctionality(t *testing.T) {
	m, _ := newScripted(t, Options{},
		step{cmd: "AT+CFUN=1", reply: "\r\nOK\r\n\r\n+CPIN: READY\r\n"},
		step{cmd: "AT+CSQ", reply: "\r\n+CSQ: 24, 99\r\n\r\nOK\r\n"},
		step{cmd: "AT+CFUN=0", reply: "\r\n+CPIN: NOT READY\r\n\r\nOK\r\n"},
	)
	ctx := t.Context()
	if err := m.SetFunctionality(ctx, 1); err != nil {
		t.Fatalf("CFUN=1: %v", err)
	}
	rssi, ber, err := m.SignalQuality(ctx)
	if err != nil || rssi != 24 || ber != 99 {
		t.Errorf("SignalQuality = %d, %d, %v; want 24, 99, nil", rssi, ber, err)
	}
	if err := m.SetFunctionality(ctx, 0); err != nil {
		t.Fatalf("CFUN=0: %v", err)
	}
	if got := m.Stats().URCs["+CPIN"]; got != 2 {
		t.Errorf("+CPIN URCs = %d, want 2", got)
	}
}

func TestWaitRegistered(t *testing.T) {
	searching := []step{
		{cmd: "AT+CEREG?", reply: "\r\n+CEREG: 0,2\r\n\r\nOK\r\n"},
		{cmd: "AT+CGREG?", reply: "\r\n+CGREG: 0,2\r\n\r\nOK\r\n"},
	}
	tests := []struct {
		name    string
		steps   []step
		timeout time.Duration
		want    Registration
		wantErr error
	}{
		{"cereg home with act", []step{
			{cmd: "AT+CEREG?", reply: "\r\n+CEREG: 2,1,\"5B57\",\"195071B\",9\r\n\r\nOK\r\n"},
		}, time.Second, Registration{Stat: 1, Technology: "NB-IoT", Via: "CEREG"}, nil},
		{"cgreg roaming after search, URC form inside answer", append(append([]step{}, searching...),
			step{cmd: "AT+CEREG?", reply: "\r\n+CEREG: 2\r\n\r\n+CEREG: 0,2\r\n\r\nOK\r\n"},
			step{cmd: "AT+CGREG?", reply: "\r\n+CGREG: 0,5\r\n\r\nOK\r\n"},
			step{cmd: "AT+COPS?", reply: "\r\n+COPS: 0,0,\"Telia\",7\r\n\r\nOK\r\n"},
		), 5 * time.Second, Registration{Stat: 5, Technology: "CAT-M", Via: "CGREG"}, nil},
		{"unsolicited registered URC is not the answer", []step{
			{cmd: "AT+CEREG?", reply: "\r\n+CEREG: 1\r\n\r\n+CEREG: 0,2\r\n\r\nOK\r\n"},
			{cmd: "AT+CGREG?", reply: "\r\n+CGREG: 0,1\r\n\r\nOK\r\n"},
			{cmd: "AT+COPS?", reply: "\r\nERROR\r\n"},
		}, time.Second, Registration{Stat: 1, Technology: "", Via: "CGREG"}, nil},
		{"denied", []step{
			{cmd: "AT+CEREG?", reply: "\r\n+CEREG: 0,3\r\n\r\nOK\r\n"},
			{cmd: "AT+CGREG?", reply: "\r\n+CGREG: 0,0\r\n\r\nOK\r\n"},
		}, time.Minute, Registration{}, ErrRegistrationDenied},
		{"timeout", append(append([]step{}, searching...), searching...), 400 * time.Millisecond, Registration{}, ErrNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newScripted(t, Options{}, tt.steps...)
			got, err := m.WaitRegistered(t.Context(), tt.timeout)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got.Waited = 0
			if got != tt.want {
				t.Errorf("registration = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSetNetworkMode(t *testing.T) {
	m, f := newScripted(t, Options{},
		step{cmd: "AT+CNMP=38", reply: "\r\nOK\r\n"},
		step{cmd: "AT+CMNB=2", reply: "\r\nOK\r\n"},
		step{cmd: `AT+CBANDCFG="NB-IOT",20`, reply: "\r\nOK\r\n"},
		step{cmd: "AT+CMNB=1", reply: "\r\n+CME ERROR: operation not allowed\r\n"},
	)
	ctx := t.Context()
	if err := m.SetNetworkMode(ctx, NetworkMode{CNMP: 38, CMNB: 2, Bands: `"NB-IOT",20`}); err != nil {
		t.Fatalf("SetNetworkMode: %v", err)
	}
	if err := m.SetNetworkMode(ctx, NetworkMode{}); err != nil {
		t.Fatalf("zero NetworkMode: %v", err)
	}
	err := m.SetNetworkMode(ctx, NetworkMode{CMNB: 1})
	var cme *CMEError
	if !errors.As(err, &cme) || cme.Code != 3 {
		t.Errorf("err = %v, want CME 3", err)
	}
	if n := len(f.cmds()); n != 4 {
		t.Errorf("%d commands sent, want 4 (zero mode sends none)", n)
	}
}

func TestInfo(t *testing.T) {
	m, _ := newScripted(t, Options{},
		step{cmd: "AT+CGMM", reply: "\r\nSIMCOM_SIM7000E\r\n\r\nOK\r\n"},
		step{cmd: "AT+CGMR", reply: "\r\nRevision:1351B05SIM7000E\r\n\r\nOK\r\n"},
		step{cmd: "AT+CGSN", reply: "\r\n869951031234567\r\n\r\nOK\r\n"},
		step{cmd: "AT+COPS?", reply: "\r\n+COPS: 0,0,\"Telia\",9\r\n\r\nOK\r\n"},
		step{cmd: "AT+CNMP?", reply: "\r\n+CNMP: 38\r\n\r\nOK\r\n"},
		step{cmd: "AT+CMNB?", reply: "\r\nERROR\r\n"},
		step{cmd: "AT+CPSI?", reply: "\r\n+CPSI: LTE NB-IOT,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,0,0,-7,-77,-70,14\r\n\r\nOK\r\n"},
	)
	got, err := m.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	want := Info{
		Model: "SIMCOM_SIM7000E", Firmware: "1351B05SIM7000E", IMEI: "869951031234567",
		Operator: "Telia", NetworkMode: "CNMP=38",
		CPSI: "LTE NB-IOT,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,0,0,-7,-77,-70,14",
	}
	if got != want {
		t.Errorf("Info = %+v\nwant %+v", got, want)
	}
}

func TestPowerDown(t *testing.T) {
	for _, reply := range []string{"\r\nNORMAL POWER DOWN\r\n", "\r\nOK\r\n"} {
		t.Run(reply[2:len(reply)-2], func(t *testing.T) {
			m, _ := newScripted(t, Options{}, step{cmd: "AT+CPOWD=1", reply: reply})
			if err := m.PowerDown(t.Context()); err != nil {
				t.Errorf("PowerDown: %v", err)
			}
		})
	}
}

// Ensure Sync revives a module stuck waiting for CIPSEND payload: it
// swallows the probes as data until the filler completes the send.
func TestSyncStuckInDataMode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 3 s of silence before the filler")
	}
	const pending = 1000
	f := startFake(t, func(fm *fakeModem) error {
		if _, err := fm.io.readData(pending); err != nil {
			return err
		}
		if err := fm.io.send("\r\nDATA ACCEPT:1000\r\n"); err != nil {
			return err
		}
		for {
			cmd, err := fm.io.readCommand()
			if err != nil {
				return err
			}
			fm.record(cmd)
			reply := "\r\nOK\r\n"
			if cmd == "AT+CMEE?" {
				reply = "\r\n+CMEE: 0\r\n" + reply
			}
			if !strings.HasPrefix(cmd, "AT") {
				reply = "\r\nERROR\r\n" // the rest of the filler as a command line
			}
			if cmd == "" {
				continue
			}
			if err := fm.io.send(reply); err != nil {
				return err
			}
		}
	})
	m := New(f.port, Options{})
	defer m.Close()
	if err := m.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got := f.cmds(); len(got) < 3 || got[len(got)-2] != "ATE0" || got[len(got)-1] != "AT+CMEE=2" {
		t.Errorf("commands after the filler: %q", got)
	}
}
