package modem

import (
	"errors"
	"fmt"
	"os"

	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// Errors reported by the module itself or by the state it announced.
// Callers tell them apart with errors.Is; every one reaches them wrapped in
// a *fault.StepError naming the AT command (or Conn operation) that failed.
var (
	// ErrTimeout means a command got no final answer within its timeout.
	// It also satisfies net.Error with Timeout() == true.
	ErrTimeout error = timeoutError{}
	// ErrRemoteClosed is the "CLOSED" URC: the peer or the network closed
	// the TCP connection.
	ErrRemoteClosed = errors.New("connection closed by remote")
	// ErrPDPDeact is the "+PDP: DEACT" URC: the bearer is gone and every CIP
	// command fails until AT+CIPSHUT and a fresh bring-up.
	ErrPDPDeact = errors.New("pdp context deactivated")
	// ErrRebooted is an unsolicited "RDY" or "SMS Ready": the module
	// restarted (typically a brown-out) and lost all its state.
	ErrRebooted = errors.New("module rebooted")
	// ErrConnectFail is "CONNECT FAIL" after AT+CIPSTART.
	ErrConnectFail = errors.New("connect fail")
	// ErrAlreadyConnected is "ALREADY CONNECT" after AT+CIPSTART: a socket
	// is still open (to an unknown peer); close it and dial again.
	ErrAlreadyConnected = errors.New("already connect")
	// ErrNotRegistered means the module did not register within the
	// allotted time, or the network denied it.
	ErrNotRegistered = errors.New("not registered")
	// ErrRegistrationDenied is stat 3 in +CEREG/+CGREG; it also matches
	// ErrNotRegistered.
	ErrRegistrationDenied = fault.WithClass(fault.BackOff, fmt.Errorf("%w: registration denied", ErrNotRegistered))
	// ErrSIMNotReady means AT+CPIN? did not answer READY.
	ErrSIMNotReady = fault.New(fault.Stop, "sim not ready")
	// ErrCommand is a plain "ERROR" final result.
	ErrCommand = errors.New("error")
	// ErrSendFail is "SEND FAIL" after a CIPSEND chunk.
	ErrSendFail = errors.New("send fail")
)

// Errors of this package's own making.
var (
	// ErrClosed is returned by every call after Modem.Close or Conn.Close,
	// and when the port's reader stopped.
	ErrClosed = errors.New("modem closed")
	// ErrProtocol means the module answered something this driver cannot
	// interpret (malformed numbers, an oversized payload header, a missing
	// prompt answered by something else).
	ErrProtocol = errors.New("unexpected answer")
	// ErrInvalidArgument means a parameter cannot be put on an AT command
	// line (a quote or line break in an APN or host, an out-of-range port).
	ErrInvalidArgument = fault.New(fault.Stop, "invalid argument")
	// ErrSplitWriteCut means a Write larger than one chunk stopped between
	// two AT+CIPSENDs without the prompt of the next: the peer holds part
	// of the Write and the module may be waiting for payload, so the next
	// bytes it hears — any AT command — would complete the peer's part with
	// junk. Send the module nothing until the peer has dropped the
	// connection (its keep-alive) or the module was power-cycled.
	ErrSplitWriteCut = errors.New("split write cut short")
)

// timeoutError is ErrTimeout's type; it implements net.Error so that
// callers which only know net.Conn still see a timeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// errDeadline is what Conn returns when its read or write deadline
// passed: it matches both ErrTimeout and os.ErrDeadlineExceeded.
var errDeadline = fmt.Errorf("%w: %w", ErrTimeout, os.ErrDeadlineExceeded)

// CMEError is a "+CME ERROR: <code|text>" final result. With AT+CMEE=1 the
// module sends the numeric Code (Text empty); with AT+CMEE=2 the verbose
// Text (Code is then -1, or the code matched from the manual's table).
type CMEError struct {
	Code int
	Text string
}

func (e *CMEError) Error() string {
	switch {
	case e.Text != "" && e.Code >= 0:
		return fmt.Sprintf("+CME ERROR: %d (%s)", e.Code, e.Text)
	case e.Text != "":
		return "+CME ERROR: " + e.Text
	default:
		return fmt.Sprintf("+CME ERROR: %d", e.Code)
	}
}

// stepErr names the AT command (or Conn operation) that failed.
func stepErr(step string, err error) error { return fault.Wrap(step, err) }
