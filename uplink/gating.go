package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
)

// StepGate is the window step that defers a window on a poor link or a
// low supply (Config.MinCSQ, Config.MinVoltageMV).
const StepGate = "gate"

// ErrDeferred is the error of a window that switched the radio off again
// at once because the link or the supply was too poor to be worth the
// energy. The records stay queued; the next window tries again.
var ErrDeferred = errors.New("window deferred")

// deferralsNote is the queue note counting deferred windows.
const deferralsNote = "deferrals"

// Deferrals counts deferred windows: all of them, and the streak since the
// last window that ran, which the next status record reports.
type Deferrals struct {
	Total      uint64    `json:"total"`
	Streak     uint64    `json:"streak"`
	Since      time.Time `json:"since,omitzero"` // the streak's first deferral
	LastReason string    `json:"last_reason,omitempty"`
}

// ReadDeferrals returns the deferral counts stored in q.
func ReadDeferrals(q *queue.Queue) (Deferrals, error) {
	var d Deferrals
	data, err := q.Note(deferralsNote)
	if err != nil || len(data) == 0 {
		return d, err
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return Deferrals{}, fmt.Errorf("parse deferrals: %w", err)
	}
	return d, nil
}

func updateDeferrals(q *queue.Queue, fn func(*Deferrals)) error {
	return q.UpdateNote(deferralsNote, func(old []byte) ([]byte, error) {
		var d Deferrals
		if len(old) > 0 {
			_ = json.Unmarshal(old, &d) // a damaged note restarts the counts
		}
		fn(&d)
		return json.Marshal(d)
	})
}

// gate defers the window when what it measured (CSQ, or the supply in mV)
// is below its minimum, unless the streak of deferrals has lasted
// Config.MaxDeferral: then the window goes anyway, so a site with a
// permanently poor link still reports.
func (w *window) gate(what string, got, minimum int) error {
	if minimum <= 0 || got >= minimum {
		return nil
	}
	reason := fmt.Sprintf("%s %d below the minimum %d", what, got, minimum)
	d, err := ReadDeferrals(w.q)
	if err != nil {
		w.log.Warn("could not read the deferrals; the window goes", "err", err)
		return nil
	}
	if d.Streak > 0 && w.cfg.MaxDeferral > 0 && time.Since(d.Since) >= w.cfg.MaxDeferral {
		w.log.Warn("link or supply poor, but windows have been deferred for too long; going anyway",
			"reason", reason, "deferred_since", d.Since.Format(time.RFC3339), "max_deferral", w.cfg.MaxDeferral)
		return nil
	}
	if err := updateDeferrals(w.q, func(d *Deferrals) {
		if d.Streak == 0 {
			d.Since = time.Now().UTC()
		}
		d.Total++
		d.Streak++
		d.LastReason = reason
	}); err != nil {
		w.log.Warn("could not count the deferral", "err", err)
	}
	w.log.Warn("window deferred: radio off again", "reason", reason)
	return stepErr(StepGate, fmt.Errorf("%w: %s", ErrDeferred, reason))
}

// endDeferralStreak is called once a window got past the gate.
func (w *window) endDeferralStreak() {
	d, err := ReadDeferrals(w.q)
	if err != nil || d.Streak == 0 {
		return
	}
	if err := updateDeferrals(w.q, func(d *Deferrals) { d.Streak, d.Since = 0, time.Time{} }); err != nil {
		w.log.Warn("could not reset the deferral streak", "err", err)
	}
}
