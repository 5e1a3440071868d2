package uplink_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/pack"
)

func budgetConfig(broker, dir string, budget int64) uplink.Config {
	cfg := uplink.Defaults()
	cfg.Transport = uplink.TransportTCP
	cfg.Broker = broker
	cfg.ClientID = "site-budget"
	cfg.MQTTVersion = codec.V5
	cfg.StatusTopic = "sites/budget/status"
	cfg.WillTopic = ""
	cfg.LockPath = filepath.Join(dir, "modem.lock")
	cfg.DataBudget = budget
	return cfg
}

// A spent budget: the first window sends the status record alone (the
// daily minimum), the next one is deferred without connecting; the
// readings stay queued and the month's counter counts only the window that
// went.
func TestBudgetSpentSendsStatusOnceThenDefers(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	q, dir := openQueue(t)
	enqueueReadings(t, q, 50, 1)
	const budget = 1_000_000
	if err := uplink.SetMonthUsage(q, uplink.Usage{Month: time.Now().UTC().Format("2006-01"), Windows: 10, AirBytes: budget}); err != nil {
		t.Fatal(err)
	}
	cfg := budgetConfig(broker.Addr(), dir, budget)

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil {
		t.Fatalf("status-only window: %+v, %v", sum, err)
	}
	if !broker.WaitCount(1, 5*time.Second) {
		t.Fatal("no status record reached the broker")
	}
	for _, m := range broker.Messages() {
		if m.Topic != cfg.StatusTopic {
			t.Errorf("a spent budget sent %s", m.Topic)
		}
	}
	if d := depth(t, q); d != 50 {
		t.Errorf("%d readings queued after the status-only window, want all 50", d)
	}
	rep, err := uplink.ReadBudget(q, time.Now())
	if err != nil || rep.Last == nil || rep.Last.Decision != uplink.BudgetStatusOnly || rep.Budget != budget || rep.Last.LastSent.IsZero() {
		t.Fatalf("budget report %+v, %v; want the status-only decision recorded with its time", rep, err)
	}
	u1, _ := uplink.MonthUsage(q, time.Now())

	sum, err = uplink.RunWindow(context.Background(), cfg, q)
	if !errors.Is(err, uplink.ErrDeferred) || !errors.Is(err, uplink.ErrOverBudget) || sum.Outcome != uplink.OutcomeDeferred {
		t.Fatalf("second window: outcome %q, %v; want deferred by the budget", sum.Outcome, err)
	}
	if d := depth(t, q); d != 50 {
		t.Errorf("%d readings queued after the deferral, want all 50", d)
	}
	rep, _ = uplink.ReadBudget(q, time.Now())
	if rep.Last.Decision != uplink.BudgetDefer || rep.Last.Deferred != 1 {
		t.Errorf("after the deferral: %+v", rep.Last)
	}
	if u2, _ := uplink.MonthUsage(q, time.Now()); u2.Windows != u1.Windows || u1.Windows != 11 {
		t.Errorf("month's windows %d then %d; want 11 both times (the deferred window never used the radio)", u1.Windows, u2.Windows)
	}
	if df, _ := uplink.ReadDeferrals(q); df.Total != 1 {
		t.Errorf("deferrals %+v; want the budget's counted", df)
	}
}

// Ahead of the pace but less than a day's share: the window goes, packed,
// although --pack is none.
func TestBudgetForecastOverPacks(t *testing.T) {
	broker := startBroker(t, brokertest.Options{})
	q, dir := openQueue(t)
	payloads := enqueueReadings(t, q, 200, 1)
	const budget = 31_000_000
	// Ahead of the pace, so the forecast exceeds the budget (after the
	// first day; on the first, whose elapsed time counts as a whole day,
	// ahead of a day's share), and within a day's share of it.
	pace, day := uplink.BudgetLimit(budget, time.Now())
	used := max(pace+day/2, day+pace/2)
	const windows = 1_000_000
	if used/windows > pace/2 {
		t.Skip("the month is seconds old: no use can be ahead of the pace yet within it")
	}
	if err := uplink.SetMonthUsage(q, uplink.Usage{Month: time.Now().UTC().Format("2006-01"), Windows: windows, AirBytes: used}); err != nil {
		t.Fatal(err)
	}
	cfg := budgetConfig(broker.Addr(), dir, budget)
	cfg.StatusTopic = ""
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	if d := depth(t, q); d != 0 {
		t.Fatalf("%d readings left", d)
	}
	if !broker.WaitCount(sum.Acked, 5*time.Second) {
		t.Fatalf("broker routed %d, window acked %d", broker.Count(), sum.Acked)
	}
	n := 0
	for _, m := range broker.Messages() {
		if m.Topic != "uploader/site-budget/pack" {
			t.Fatalf("unpacked message on %s", m.Topic)
		}
		p, err := pack.Decode(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Readings)
	}
	if n != len(payloads) {
		t.Errorf("%d readings in packs, want %d", n, len(payloads))
	}
	rep, _ := uplink.ReadBudget(q, time.Now())
	if rep.Last == nil || rep.Last.Decision != uplink.BudgetPack {
		t.Errorf("budget report %+v; want the pack decision", rep.Last)
	}
}
