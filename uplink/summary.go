package uplink

import (
	"encoding/json"
	"fmt"
	"time"
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
	Class               string  `json:"class,omitempty"`
	Error               string  `json:"error,omitempty"`
	Queued              int64   `json:"queued"` // depth when the window started
	Sent                int     `json:"sent"`
	Acked               int     `json:"acked"`
	Skipped             int     `json:"skipped,omitempty"`
	MQTTBytesOut        int64   `json:"mqtt_bytes_out"`
	MQTTBytesIn         int64   `json:"mqtt_bytes_in"`
	Chunks              int     `json:"chunks"`
	CSQ                 int     `json:"csq"` // 99 = unknown
	RegistrationSeconds float64 `json:"registration_seconds"`
	RadioOnSeconds      float64 `json:"radio_on_seconds"`
	DurationSeconds     float64 `json:"duration_seconds"`
	RadioOffError       string  `json:"radio_off_error,omitempty"`
}

// OK reports whether the window succeeded.
func (s Summary) OK() bool { return s.Outcome == OutcomeOK }

// Window outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
	// OutcomeSkipped: the window did not bring the radio up (nothing was
	// queued); Error says why.
	OutcomeSkipped = "skipped"
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
	if s.Error != "" {
		line += ": " + s.Error
	}
	return line
}
