package session

import (
	"errors"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// A refused CONNECT or a broker's DISCONNECT tells the caller what to do
// next: wait for somebody to fix the configuration, or come back later.
func TestRefusalsAndDisconnectsCarryTheirClass(t *testing.T) {
	refused := func(v codec.Version, code byte) error {
		return withStep(StepConnect, &RefusedError{Err: &codec.ConnackError{Version: v, Code: code}})
	}
	tests := []struct {
		name string
		err  error
		want fault.Class
	}{
		{"3.1.1 bad credentials", refused(codec.V311, 4), fault.Stop},
		{"3.1.1 not authorized", refused(codec.V311, 5), fault.Stop},
		{"3.1.1 identifier rejected", refused(codec.V311, 2), fault.Stop},
		{"3.1.1 server unavailable", refused(codec.V311, 3), fault.BackOff},
		{"5 bad credentials", refused(codec.V5, 0x86), fault.Stop},
		{"5 not authorized", refused(codec.V5, 0x87), fault.Stop},
		{"5 banned", refused(codec.V5, 0x8A), fault.Stop},
		{"5 server busy", refused(codec.V5, 0x89), fault.BackOff},
		{"5 quota exceeded", refused(codec.V5, 0x97), fault.BackOff},
		{"5 connection rate exceeded", refused(codec.V5, 0x9F), fault.BackOff},
		{"5 DISCONNECT server shutting down", disconnectError(codec.V5, &codec.Disconnect{ReasonCode: 0x8B}), fault.BackOff},
		{"5 DISCONNECT not authorized", disconnectError(codec.V5, &codec.Disconnect{ReasonCode: 0x87}), fault.Stop},
		{"5 DISCONNECT topic name invalid", disconnectError(codec.V5, &codec.Disconnect{ReasonCode: 0x90}), fault.Retry},
		{"3.1.1 DISCONNECT", disconnectError(codec.V311, &codec.Disconnect{}), fault.Retry},
		{"reply timeout", withStep(StepWaitAcks, ErrReplyTimeout), fault.Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.ClassOf(tt.err); got != tt.want {
				t.Errorf("ClassOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if !errors.Is(disconnectError(codec.V5, &codec.Disconnect{ReasonCode: 0x89}), ErrBrokerDisconnect) {
		t.Error("a classified DISCONNECT no longer matches ErrBrokerDisconnect")
	}
}

// An error from the connection gets the session's step around it; one
// that already names a session step keeps it.
func TestWithStepKeepsSessionStepsOnly(t *testing.T) {
	fromModem := &fault.StepError{Step: "AT+CIPSEND", Err: errors.New("send fail")}
	if got := fault.StepOf(withStep(StepPublish, fromModem)); got != StepPublish {
		t.Errorf("a modem error got step %q, want %q", got, StepPublish)
	}
	fromQueue := &fault.StepError{Step: StepQueueAck, Err: errors.New("disk full")}
	if got := fault.StepOf(withStep(StepWaitAcks, fromQueue)); got != StepQueueAck {
		t.Errorf("a queue error got step %q, want %q", got, StepQueueAck)
	}
}

// A record the broker refuses is quarantined, unless the refusal only
// means "later".
func TestRefusalClass(t *testing.T) {
	for code, want := range map[byte]fault.Class{
		0x80: fault.Quarantine, 0x87: fault.Quarantine, 0x90: fault.Quarantine, 0x99: fault.Quarantine,
		0x97: fault.BackOff,
	} {
		if got := refusalClass(code); got != want {
			t.Errorf("refusalClass(0x%02x) = %v, want %v", code, got, want)
		}
	}
}
