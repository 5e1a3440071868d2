package session

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nbiot-uploader/uploader/codec"
)

// These errors classify how a session ended; test for them with errors.Is.
var (
	// ErrBrokerDisconnect is returned when the broker sent DISCONNECT (the
	// wrapping message names the MQTT 5 reason) or closed the connection.
	ErrBrokerDisconnect = errors.New("broker ended the connection")
	// ErrReplyTimeout is returned when a broker reply (CONNACK, an
	// acknowledgement, PINGRESP) or a write did not complete within
	// Config.ReplyTimeout.
	ErrReplyTimeout = errors.New("no reply from broker in time")
	// ErrProtocol is returned when the broker sent bytes that are not valid
	// MQTT, a packet a broker must not send, or an acknowledgement for a packet
	// identifier that is not in flight.
	ErrProtocol = errors.New("broker violated the MQTT protocol")
)

// Steps named by StepError.Step.
const (
	StepConnect    = "mqtt connect"
	StepPublish    = "mqtt publish"
	StepWaitAcks   = "mqtt wait acks"
	StepDisconnect = "mqtt disconnect"
	StepQueueRead  = "queue read"
	StepQueueAck   = "queue ack"
)

// StepError names the step of the session that failed. Every error Run
// returns is a *StepError.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// RefusedError reports a CONNACK that refused the connection. No record was
// deleted.
type RefusedError struct {
	Err *codec.ConnackError
}

func (e *RefusedError) Error() string {
	reason := strings.TrimPrefix(e.Err.Error(), "connection refused: ")
	return "broker refused connection: " + reason
}

func (e *RefusedError) Unwrap() error { return e.Err }

// disconnectError builds the error for a DISCONNECT sent by the broker.
func disconnectError(v codec.Version, d *codec.Disconnect) error {
	if v != codec.V5 {
		return fmt.Errorf("%w: DISCONNECT", ErrBrokerDisconnect)
	}
	detail := fmt.Sprintf("DISCONNECT reason 0x%02x (%s)", d.ReasonCode, codec.ReasonCodeText(d.ReasonCode))
	if d.ReasonString != "" {
		detail += fmt.Sprintf(" %q", d.ReasonString)
	}
	if d.ServerReference != "" {
		detail += fmt.Sprintf(", use server %q", d.ServerReference)
	}
	return fmt.Errorf("%w: %s", ErrBrokerDisconnect, detail)
}
