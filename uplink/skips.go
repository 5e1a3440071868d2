package uplink

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
)

// skipsNote is the queue note counting windows that did not run.
const skipsNote = "window-skips"

// WindowSkips counts the windows that did not bring the radio up, kept
// apart from the last window's summary so a window that gave up never
// hides the record of one that ran.
type WindowSkips struct {
	Busy       uint64    `json:"busy"`  // another window or modem user held the queue or the modem
	Empty      uint64    `json:"empty"` // nothing was queued
	Last       time.Time `json:"last,omitzero"`
	LastReason string    `json:"last_reason,omitempty"`
}

func countSkippedWindow(q *queue.Queue, reason string, at time.Time) error {
	return q.UpdateNote(skipsNote, func(old []byte) ([]byte, error) {
		var s WindowSkips
		if len(old) > 0 {
			// A damaged note restarts the counts rather than failing
			// every window from now on.
			_ = json.Unmarshal(old, &s)
		}
		switch reason {
		case "busy":
			s.Busy++
		default:
			s.Empty++
		}
		s.Last, s.LastReason = at.UTC(), reason
		return json.Marshal(s)
	})
}

// ReadWindowSkips returns the skipped-window counts stored in q.
func ReadWindowSkips(q *queue.Queue) (WindowSkips, error) {
	var s WindowSkips
	data, err := q.Note(skipsNote)
	if err != nil || len(data) == 0 {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("parse window skips: %w", err)
	}
	return s, nil
}
