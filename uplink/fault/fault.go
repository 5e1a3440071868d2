// Package fault is the error vocabulary the uplink packages share: a
// StepError names the step of a window that failed, and a Class says what
// the caller does next — retry at the next window, back off, quarantine the
// record, or stop and report.
//
// Errors get their class where they are made (the session knows that a
// CONNACK 0x86 means bad credentials, the modem driver that a SIM that is
// not ready will not get better by itself); package uplink classifies the
// errors of packages that must not know this one (queue) and is the one
// place that decides from the class. It imports nothing of this module and
// must not: package modem, package session and package uplink all import it.
package fault

import (
	"errors"
	"fmt"
)

// StepError names the step that failed: a window step ("registration"),
// an MQTT session step ("mqtt publish") or an AT command ("AT+CIPSTART",
// never with its arguments, which may carry secrets). Steps nest: the
// outermost one is what a window summary reports, the inner ones are in the
// message.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Timeout reports whether the underlying error is a timeout, so a
// *StepError satisfies net.Error like the errors of package net (a session
// reading from a modem connection sees its deadlines this way).
func (e *StepError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Temporary mirrors Timeout; net.Error requires it.
func (e *StepError) Temporary() bool { return e.Timeout() }

// Wrap names err's step. An error whose outermost step already is step is
// returned as it is, so a retried step is not named twice. nil stays nil.
func Wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	if StepOf(err) == step {
		return err
	}
	return &StepError{Step: step, Err: err}
}

// StepOf returns the outermost step named in err's chain, "" if none.
func StepOf(err error) string {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

// Class says what the caller of a failed step does next. The zero value is
// Retry: a failure nobody classified is taken for a passing link problem.
type Class int

const (
	// Retry: the link failed (registration, bearer, TCP, a modem that
	// hung); the next window, or an early retry, may well succeed.
	Retry Class = iota
	// BackOff: the far end is up but declined service for now (server
	// unavailable or busy, quota or connection rate exceeded, registration
	// denied): retry, but later and later.
	BackOff
	// Quarantine: one record cannot be delivered as it is (the broker
	// refused it, it is larger than the broker takes, its topic is
	// invalid); move it aside so the records behind it go on.
	Quarantine
	// Stop: configuration or authorization (wrong password, not
	// authorized, a certificate that does not verify, an invalid option, no
	// SIM): nothing changes until somebody changes something, so wait for
	// the next regular window and report it loudly.
	Stop
)

var classNames = [...]string{Retry: "retry", BackOff: "backoff", Quarantine: "quarantine", Stop: "stop"}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Advice is the operator's next step for errors of this class, for logs
// and status output.
func (c Class) Advice() string {
	switch c {
	case BackOff:
		return "the broker or network declined service for now; later windows retry"
	case Quarantine:
		return "a record cannot be delivered as it is and was moved to quarantine"
	case Stop:
		return "configuration or authorization: fix it, retrying alone will not help"
	default:
		return "link failure; the next window retries"
	}
}

// Classifier is implemented by errors that know their class.
type Classifier interface {
	FaultClass() Class
}

// ClassOf returns the class of the first error in err's chain that knows
// its class, and Retry when none does (or err is nil).
func ClassOf(err error) Class {
	var c Classifier
	if errors.As(err, &c) {
		return c.FaultClass()
	}
	return Retry
}

// classified gives an error a class without changing its text.
type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string     { return e.err.Error() }
func (e *classified) Unwrap() error     { return e.err }
func (e *classified) FaultClass() Class { return e.class }

// WithClass wraps err with a class; errors.Is and errors.As still see err.
// nil stays nil.
func WithClass(class Class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: class, err: err}
}

// New is errors.New for a sentinel error of a known class.
func New(class Class, text string) error {
	return &classified{class: class, err: errors.New(text)}
}
