package fault_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

func TestWrapNamesTheStepOnce(t *testing.T) {
	base := errors.New("connect fail")
	inner := fault.Wrap("AT+CIPSTART", base)
	outer := fault.Wrap("tcp connect", inner)
	if got, want := outer.Error(), "tcp connect: AT+CIPSTART: connect fail"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if fault.Wrap("tcp connect", outer) != outer { //nolint:errorlint // identity: returned unchanged
		t.Error("wrapping with the outermost step again made a new error")
	}
	if got := fault.StepOf(outer); got != "tcp connect" {
		t.Errorf("StepOf = %q, want the outermost step", got)
	}
	if !errors.Is(outer, base) {
		t.Error("the cause is lost")
	}
	if fault.Wrap("x", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	if fault.StepOf(base) != "" {
		t.Error("StepOf an error without a step is not empty")
	}
}

func TestStepErrorIsANetErrorForTimeouts(t *testing.T) {
	var ne net.Error
	err := fault.Wrap("read", fmt.Errorf("wait: %w", os.ErrDeadlineExceeded))
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", err)
	}
	if errors.As(fault.Wrap("read", errors.New("boom")), &ne) && ne.Timeout() {
		t.Error("a plain error reports a timeout")
	}
}

func TestClassOf(t *testing.T) {
	errSIM := fault.New(fault.Stop, "sim not ready")
	tests := []struct {
		name string
		err  error
		want fault.Class
	}{
		{"nil", nil, fault.Retry},
		{"unclassified", errors.New("eof"), fault.Retry},
		{"sentinel", errSIM, fault.Stop},
		{"wrapped sentinel", fault.Wrap("SIM check", fmt.Errorf("AT+CPIN?: %w", errSIM)), fault.Stop},
		{"WithClass", fault.WithClass(fault.BackOff, errors.New("server busy")), fault.BackOff},
		{"outermost class wins", fault.WithClass(fault.Quarantine, errSIM), fault.Quarantine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.ClassOf(tt.err); got != tt.want {
				t.Errorf("ClassOf = %v, want %v", got, tt.want)
			}
		})
	}
	if !errors.Is(fault.Wrap("x", errSIM), errSIM) {
		t.Error("errors.Is does not see a classified sentinel")
	}
	if got := fault.WithClass(fault.Stop, errors.New("bad")).Error(); got != "bad" {
		t.Errorf("WithClass changed the text: %q", got)
	}
}

func TestClassStrings(t *testing.T) {
	for c, want := range map[fault.Class]string{fault.Retry: "retry", fault.BackOff: "backoff", fault.Quarantine: "quarantine", fault.Stop: "stop", 9: "class(9)"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
		if c.Advice() == "" {
			t.Errorf("%v has no advice", c)
		}
	}
}

func ExampleClassOf() {
	errBusy := fault.New(fault.BackOff, "server busy")
	err := fault.Wrap("mqtt connect", fmt.Errorf("CONNACK: %w", errBusy))
	fmt.Println(fault.StepOf(err), fault.ClassOf(err))
	// Output: mqtt connect backoff
}
