package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// Summary describes one window. It is stored through the queue (as JSON)
// so `uploader status` can show the last window's outcome.
type Summary struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Transport Transport `json:"transport"`
	Outcome   string    `json:"outcome"` // "ok", "failed" or "skipped"
	Step      string    `json:"step,omitempty"`
	// Class says what comes next after a failure (fault.Class: "retry",
	// "backoff", "quarantine", "stop").
	Class       string `json:"class,omitempty"`
	Error       string `json:"error,omitempty"`
	Queued      int64  `json:"queued"` // depth when the window started
	Sent        int    `json:"sent"`
	Acked       int    `json:"acked"`
	Skipped     int    `json:"skipped,omitempty"`
	Refused     int    `json:"refused,omitempty"`     // records the broker refused (MQTT 5 PUBACK/PUBREC reason >= 0x80)
	Quarantined int    `json:"quarantined,omitempty"` // records moved to the quarantine in this window
	StatusSent  bool   `json:"status_sent,omitempty"` // the status record was acknowledged
	// TLS is how the window's TLS session began: TLSResumed (the last
	// window's session, no certificates on the air) or TLSFull; "" without
	// TLS or before the handshake finished.
	TLS                 string  `json:"tls,omitempty"`
	MQTTBytesOut        int64   `json:"mqtt_bytes_out"`
	MQTTBytesIn         int64   `json:"mqtt_bytes_in"`
	Chunks              int     `json:"chunks"`
	CSQ                 int     `json:"csq"` // 99 = unknown
	RegistrationSeconds float64 `json:"registration_seconds"`
	RadioOnSeconds      float64 `json:"radio_on_seconds"`
	DurationSeconds     float64 `json:"duration_seconds"`
	RadioOffError       string  `json:"radio_off_error,omitempty"`

	// Downlink (inbox.go): messages the broker delivered and the window
	// stored in the inbox, their topic+payload bytes, redeliveries
	// recognised, messages left with the broker because the inbox was
	// full; and the inbox hook's runs after the window.
	DownlinkMessages   int   `json:"downlink_messages,omitempty"`
	DownlinkBytes      int64 `json:"downlink_bytes,omitempty"`
	DownlinkDuplicates int   `json:"downlink_duplicates,omitempty"`
	DownlinkRefused    int   `json:"downlink_refused,omitempty"`
	HookOK             int   `json:"hook_ok,omitempty"`
	HookFailed         int   `json:"hook_failed,omitempty"`
}

// OK reports whether the window succeeded.
func (s Summary) OK() bool { return s.Outcome == OutcomeOK }

// Summary.TLS values.
const (
	TLSFull    = "full"
	TLSResumed = "resumed"
)

// Window outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
	// OutcomeSkipped: the window did not bring the radio up (nothing was
	// queued); Error says why.
	OutcomeSkipped = "skipped"
	// OutcomeDeferred: the link or the supply was below its minimum, so
	// the radio went off again at once (ErrDeferred); Error says why.
	OutcomeDeferred = "deferred"
)

// ParseSummary decodes what the queue stored; nil data gives (nil, nil).
func ParseSummary(data []byte) (*Summary, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse window summary: %w", err)
	}
	return &s, nil
}

// String is the one-line form the daemon logs and `flush` prints.
func (s Summary) String() string {
	if s.Outcome == OutcomeSkipped {
		return "window skipped: " + s.Error
	}
	line := fmt.Sprintf("window %s: %d of %d records acknowledged (%d sent), %d MQTT bytes in %d chunks, radio on %.1fs, CSQ %d, took %.1fs",
		s.Outcome, s.Acked, s.Queued, s.Sent, s.MQTTBytesOut, s.Chunks, s.RadioOnSeconds, s.CSQ, s.DurationSeconds)
	if s.Refused > 0 || s.Quarantined > 0 {
		line += fmt.Sprintf(", %d refused by the broker, %d quarantined", s.Refused, s.Quarantined)
	}
	if s.DownlinkMessages > 0 || s.DownlinkRefused > 0 {
		line += fmt.Sprintf(", %d downlink messages (%d bytes) into the inbox", s.DownlinkMessages, s.DownlinkBytes)
		if s.DownlinkRefused > 0 {
			line += fmt.Sprintf(", %d left with the broker (inbox full)", s.DownlinkRefused)
		}
	}
	if s.HookOK > 0 || s.HookFailed > 0 {
		line += fmt.Sprintf(", inbox hook: %d handled, %d failed", s.HookOK, s.HookFailed)
	}
	if s.Error != "" {
		line += ": " + s.Error
	}
	return line
}

// ErrAllRefused is the error of a window whose session went well but
// delivered nothing, because every record it tried was refused by the
// broker or could not be sent to it (and so quarantined): such a window is
// not "ok".
var ErrAllRefused = errors.New("nothing delivered: the broker refused every record")

// allRefused returns ErrAllRefused, naming the step, for a window that
// acknowledged nothing while it refused or quarantined something.
func allRefused(s *Summary) error {
	if s.Acked > 0 || (s.Refused == 0 && s.Quarantined == 0) {
		return nil
	}
	return &fault.StepError{Step: session.StepPublish,
		Err: fault.WithClass(fault.Quarantine, fmt.Errorf("%w (%d refused, %d quarantined; see uploader quarantine list)", ErrAllRefused, s.Refused, s.Quarantined))}
}
