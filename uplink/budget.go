package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// The data budget (Config.DataBudget, `--data-budget`): a cap on the
// estimated air bytes of one calendar month (UTC), the month-to-date
// counter being the "usage-month" note (status.go). Before the radio goes
// on, each window decides:
//
//   - the month's forecast (what the month-to-date rate gives by its end)
//     exceeds the budget: the window packs its readings, with or without
//     --pack;
//   - the month's use plus the window it would add (the month's average
//     window) is more than a day's share of the budget ahead of the even
//     pace (the budget times the share of the month gone), or over the
//     budget: the window is deferred (ErrOverBudget, an ErrDeferred) and
//     the readings stay queued — caps and TTL still apply, as to any
//     queued reading;
//   - but when no window has gone for BudgetStatusEvery, it goes with the
//     status record alone, so the site still reports once a day.
//
// Every decision is logged and kept in the "budget" queue note, which
// `uploader status` shows with the use, the budget and the forecast.

// ErrOverBudget is wrapped, with ErrDeferred, by a window deferred to keep
// the data budget: the daemon treats it as any deferral (no retry; the next
// slot decides again).
var ErrOverBudget = errors.New("data budget")

// BudgetStatusEvery is how often a window goes under a spent budget, with
// the status record alone.
const BudgetStatusEvery = 24 * time.Hour

// The decisions.
const (
	BudgetSend       = "send"        // within the budget's pace
	BudgetPack       = "pack"        // the forecast exceeds the budget: packed
	BudgetStatusOnly = "status-only" // over the pace, but the daily status is due
	BudgetDefer      = "defer"       // over the pace: the window is deferred
)

// budgetNote is the queue note of the last decision.
const budgetNote = "budget"

// BudgetState is what the last window under a budget decided.
type BudgetState struct {
	Budget   int64     `json:"budget"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	// LastSent is the end of the last window under the budget that
	// connected (with readings or the status record alone).
	LastSent time.Time `json:"last_sent,omitzero"`
	// Month and Deferred count the windows deferred this month.
	Month    string `json:"month"`
	Deferred int    `json:"deferred"`
}

// BudgetReport is the month against the budget, for `uploader status`.
type BudgetReport struct {
	Budget   int64        `json:"budget"`         // bytes; 0 when none was set
	Used     int64        `json:"used"`           // air bytes (estimate) this month
	Forecast int64        `json:"forecast"`       // what the month will end at at this rate
	Pace     int64        `json:"pace"`           // the even share of the budget by now
	Last     *BudgetState `json:"last,omitempty"` // the last decision
}

// ParseBytes reads a byte count: digits with an optional suffix B, kB (or
// KB, 1,000), MB (1,000,000), GB, KiB (1,024), MiB or GiB.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is no byte count (digits, then B, kB, MB, GB, KiB, MiB or GiB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	m, ok := mult[strings.TrimSpace(t[i:])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, kB, MB, GB, KiB, MiB or GiB)", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<62)/m {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * m, nil
}

// monthSpan is the calendar month (UTC) holding now.
func monthSpan(now time.Time) (start, end time.Time) {
	now = now.UTC()
	start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// forecast extrapolates the month-to-date use to the month's end; the
// elapsed time counts as at least a day, so the first window of a month
// does not forecast thirty times itself from an hour.
func forecast(used int64, now time.Time) int64 {
	start, end := monthSpan(now)
	elapsed := max(now.Sub(start), 24*time.Hour)
	rest := end.Sub(now)
	return used + int64(float64(used)*float64(rest)/float64(elapsed))
}

// pace is the even share of budget by now.
func pace(budget int64, now time.Time) int64 {
	start, end := monthSpan(now)
	return int64(float64(budget) * float64(now.Sub(start)) / float64(end.Sub(start)))
}

// ReadBudget reports this month against budget (0: the budget the last
// window used, if any).
func ReadBudget(q *queue.Queue, now time.Time) (BudgetReport, error) {
	u, err := MonthUsage(q, now)
	if err != nil {
		return BudgetReport{}, err
	}
	r := BudgetReport{Used: u.AirBytes, Forecast: forecast(u.AirBytes, now)}
	st, err := readBudgetState(q)
	if err != nil {
		return r, err
	}
	if st != nil {
		r.Last = st
		r.Budget = st.Budget
		r.Pace = pace(st.Budget, now)
	}
	return r, nil
}

func readBudgetState(q *queue.Queue) (*BudgetState, error) {
	data, err := q.Note(budgetNote)
	if err != nil || len(data) == 0 {
		return nil, err
	}
	var st BudgetState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parse the budget note: %w", err)
	}
	return &st, nil
}

// budgetDecision is what one window does under the budget.
type budgetDecision struct {
	action string
	reason string
}

func (d budgetDecision) pack() bool       { return d.action == BudgetPack }
func (d budgetDecision) statusOnly() bool { return d.action == BudgetStatusOnly }

// decideBudget is the rule above, for a window at now with the month's
// usage u and the last window that went under the budget at lastSent.
// hasStatus: the window has a status record to send.
//
// The window packs once the forecast exceeds the budget, which at an even
// rate is as soon as the month's use is ahead of the pace. It defers only
// when it would put the month more than one day's share of the budget
// ahead of the pace, or over the budget: between the two, packing alone has
// the chance to bring the rate down.
func decideBudget(now time.Time, budget int64, u Usage, lastSent time.Time, hasStatus bool) budgetDecision {
	fc := forecast(u.AirBytes, now)
	var avg int64
	if u.Windows > 0 {
		avg = u.AirBytes / int64(u.Windows)
	}
	start, end := monthSpan(now)
	day := int64(float64(budget) * float64(24*time.Hour) / float64(end.Sub(start)))
	p := pace(budget, now)
	limit := min(p+day, budget)
	if u.AirBytes+avg > limit {
		over := fmt.Sprintf("%d bytes used this month, %d after an average window; the limit by now is %d (the even pace %d plus a day's share %d, at most the budget %d)",
			u.AirBytes, u.AirBytes+avg, limit, p, day, budget)
		if u.AirBytes >= budget {
			over = fmt.Sprintf("the budget of %d bytes is spent (%d used)", budget, u.AirBytes)
		}
		if hasStatus && (lastSent.IsZero() || now.Sub(lastSent) >= BudgetStatusEvery) {
			return budgetDecision{BudgetStatusOnly, over + "; the daily status record goes alone, readings stay queued"}
		}
		return budgetDecision{BudgetDefer, over + "; readings stay queued"}
	}
	if fc > budget {
		return budgetDecision{BudgetPack, fmt.Sprintf("the month's forecast of %d bytes exceeds the budget of %d: packing", fc, budget)}
	}
	return budgetDecision{BudgetSend, fmt.Sprintf("forecast %d bytes within the budget of %d", fc, budget)}
}

// budgetGate decides this window under Config.DataBudget, logs and records
// the decision, and returns the deferral error when it defers.
func (w *window) budgetGate(now time.Time) error {
	if w.cfg.DataBudget <= 0 {
		return nil
	}
	u, err := MonthUsage(w.q, now)
	if err != nil {
		w.log.Warn("could not read the month's usage; the window goes within the budget's rules as if nothing was used", "err", err)
	}
	st, err := readBudgetState(w.q)
	if err != nil {
		w.log.Warn("could not read the last budget decision", "err", err)
	}
	var lastSent time.Time
	if st != nil {
		lastSent = st.LastSent
	}
	d := decideBudget(now, w.cfg.DataBudget, u, lastSent, w.cfg.StatusTopic != "")
	w.budget = d
	month := now.UTC().Format("2006-01")
	if err := w.q.UpdateNote(budgetNote, func(old []byte) ([]byte, error) {
		var s BudgetState
		if len(old) > 0 {
			_ = json.Unmarshal(old, &s) // a damaged note restarts
		}
		if s.Month != month {
			s.Month, s.Deferred = month, 0
		}
		s.Budget, s.Decision, s.Reason, s.At = w.cfg.DataBudget, d.action, d.reason, now.UTC()
		if d.action == BudgetDefer {
			s.Deferred++
		}
		return json.Marshal(s)
	}); err != nil {
		w.log.Warn("could not record the budget decision", "err", err)
	}
	if d.action == BudgetDefer {
		w.log.Warn("window deferred by the data budget: radio stays off", "reason", d.reason)
		if err := updateDeferrals(w.q, func(df *Deferrals) {
			if df.Streak == 0 {
				df.Since = now.UTC()
			}
			df.Total++
			df.Streak++
			df.LastReason = "data budget: " + d.reason
		}); err != nil {
			w.log.Warn("could not count the deferral", "err", err)
		}
		return stepErr(StepGate, fmt.Errorf("%w: %w: %s", ErrDeferred, ErrOverBudget, d.reason))
	}
	w.log.Info("data budget", "decision", d.action, "reason", d.reason)
	return nil
}

// budgetSent records that a window under the budget connected and ended
// well, which restarts the day until the next status-only window.
func (w *window) budgetSent(err error) {
	if w.cfg.DataBudget <= 0 || err != nil || w.budget.action == "" || w.budget.action == BudgetDefer {
		return
	}
	end := time.Now().UTC()
	if uerr := w.q.UpdateNote(budgetNote, func(old []byte) ([]byte, error) {
		var s BudgetState
		if len(old) > 0 {
			_ = json.Unmarshal(old, &s)
		}
		s.LastSent = end
		return json.Marshal(s)
	}); uerr != nil {
		w.log.Warn("could not record the window under the budget", "err", uerr)
	}
}

// statusOnlyStore is the store of a status-only window: nothing to read,
// so the session sends its status record and ends; the readings stay
// queued.
type statusOnlyStore struct{}

func (statusOnlyStore) Read(uint64, int, int) ([]session.Record, error) { return nil, nil }
func (statusOnlyStore) Ack([]uint64) error                              { return nil }
func (statusOnlyStore) Quarantine(uint64, string) error                 { return nil }
func (statusOnlyStore) Strike(uint64) error                             { return nil }
