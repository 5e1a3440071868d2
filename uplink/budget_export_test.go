package uplink

import (
	"encoding/json"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
)

// SetMonthUsage stores u as this month's usage (for tests of the budget).
func SetMonthUsage(q *queue.Queue, u Usage) error {
	return q.UpdateNote(usageNote, func([]byte) ([]byte, error) { return json.Marshal(u) })
}

// BudgetLimit is the deferral limit of decideBudget at now: the pace plus
// a day's share.
func BudgetLimit(budget int64, now time.Time) (pace_, day int64) {
	start, end := monthSpan(now)
	return pace(budget, now), int64(float64(budget) * float64(24*time.Hour) / float64(end.Sub(start)))
}
