package session

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
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

// Steps named by the *fault.StepError every error of Run carries.
const (
	StepConnect    = "mqtt connect"
	StepPublish    = "mqtt publish"
	StepWaitAcks   = "mqtt wait acks"
	StepDisconnect = "mqtt disconnect"
	StepQueueRead  = "queue read"
	StepQueueAck   = "queue ack"
)

// isSessionStep reports whether step is one of this package's steps, so an
// error that already names one (a queue failure) keeps it while one from
// the connection (an AT command's) gets the session step around it.
func isSessionStep(step string) bool {
	switch step {
	case StepConnect, StepPublish, StepWaitAcks, StepDisconnect, StepQueueRead, StepQueueAck, StepQueueQuarantine, StepInboxStore:
		return true
	}
	return false
}

// withStep names err's session step unless it already names one.
func withStep(step string, err error) error {
	if err == nil || isSessionStep(fault.StepOf(err)) {
		return err
	}
	return &fault.StepError{Step: step, Err: err}
}

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

// FaultClass says what a refused CONNECT asks of the caller: the broker's
// own trouble (unavailable, busy, quota, connection rate, another server)
// is worth a retry later; credentials, identity, protocol version and
// bans are not until somebody changes the configuration.
func (e *RefusedError) FaultClass() fault.Class {
	if e.Err.Version != codec.V5 {
		if e.Err.Code == 3 { // server unavailable
			return fault.BackOff
		}
		return fault.Stop // 1 version, 2 identifier, 4 credentials, 5 not authorized
	}
	return reasonClass(e.Err.Code)
}

// reasonClass classifies an MQTT 5 reason code >= 0x80 that ends a
// connection (CONNACK or DISCONNECT).
func reasonClass(code byte) fault.Class {
	switch code {
	case 0x80, 0x83, 0x89, 0x8B, 0x8D, 0x93, 0x97, 0x9C, 0x9F:
		// unspecified, implementation specific, server busy, shutting
		// down, keep-alive timeout, receive maximum exceeded, quota,
		// use another server, connection rate exceeded
		return fault.BackOff
	case 0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x9D:
		// unsupported version, client id not valid, bad credentials,
		// not authorized, banned, bad authentication method, server moved
		return fault.Stop
	}
	return fault.Retry
}

// disconnectedError is a DISCONNECT the broker sent, with its class.
type disconnectedError struct {
	err   error
	class fault.Class
}

func (e *disconnectedError) Error() string           { return e.err.Error() }
func (e *disconnectedError) Unwrap() error           { return e.err }
func (e *disconnectedError) FaultClass() fault.Class { return e.class }

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
	return &disconnectedError{err: fmt.Errorf("%w: %s", ErrBrokerDisconnect, detail), class: reasonClass(d.ReasonCode)}
}
