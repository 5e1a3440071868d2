package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// Window steps, as named in errors (*fault.StepError) and in the stored
// summary. The MQTT session's own steps (session.StepConnect, ...) and
// the modem's AT commands appear inside them.
const (
	StepWindowLock   = "window lock" // another window drains the same queue
	StepModemLock    = "modem lock"
	StepInterrupted  = "interrupted send" // an earlier window died mid-PUBLISH
	StepPowerOn      = "power on"
	StepOpenSerial   = "open serial port"
	StepSync         = "modem sync"
	StepRadioOn      = "radio on"
	StepSIM          = "SIM check"
	StepNetworkMode  = "network mode"
	StepRegistration = "registration"
	StepSignal       = "signal quality"
	StepBearer       = "bearer"
	StepTCPConnect   = "tcp connect"
	StepTLS          = "tls handshake"
	StepMQTT         = "mqtt session" // or the session's own, finer step (session.StepConnect ...)
	StepQueue        = "queue"
	StepConfig       = "configuration"
)

func stepErr(step string, err error) error { return fault.Wrap(step, err) }

// Classify says what a window's caller does next after err: the one place
// that decides, for the window summary, the daemon's retries and the
// operator's advice. Errors that know their class (fault.Classifier: the
// session's refusals, the modem's SIM and argument errors) keep it; this
// adds the classes of packages that must not know package fault.
func Classify(err error) fault.Class {
	var c fault.Classifier
	if errors.As(err, &c) {
		return c.FaultClass()
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return fault.Retry
	case errors.Is(err, ErrInvalidConfig),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		// A certificate that does not verify will not verify next hour.
		return fault.Stop
	case errors.Is(err, queue.ErrCorrupt), errors.Is(err, queue.ErrNotQueue), errors.Is(err, queue.ErrNewerFormat):
		return fault.Stop
	}
	return fault.Retry
}

// errorsIsBusy reports a window that did not run because another process
// held the queue's window lock or the modem.
func errorsIsBusy(err error) bool {
	return errors.Is(err, ErrWindowBusy) || errors.Is(err, ErrModemBusy)
}
