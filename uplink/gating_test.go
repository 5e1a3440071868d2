package uplink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// A window on a link below --min-csq switches the radio off again at once,
// keeps the records and counts the deferral; once deferrals have lasted
// MaxDeferral a window goes anyway, and its status record reports them.
func TestWindowDeferredOnPoorSignal(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	simCfg := modemsim.Fast()
	simCfg.CSQ = 6
	sim := simtest.Start(t, simCfg)
	q, dir := openQueue(t)
	enqueueReadings(t, q, 5, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.MinCSQ = 10
	cfg.MaxDeferral = time.Hour
	cfg.StatusTopic = "uploader/site-7/status"

	for i := 1; i <= 2; i++ {
		sum, err := uplink.RunWindow(context.Background(), cfg, q)
		if !errors.Is(err, uplink.ErrDeferred) || sum.Outcome != uplink.OutcomeDeferred || fault.StepOf(err) != uplink.StepGate {
			t.Fatalf("window %d on CSQ 6 with --min-csq 10: %+v, %v", i, sum, err)
		}
		if sim.RadioOn() || sum.Sent != 0 || depth(t, q) != 5 {
			t.Errorf("deferred window %d: radio on %v, sent %d, depth %d", i, sim.RadioOn(), sum.Sent, depth(t, q))
		}
	}
	d, err := uplink.ReadDeferrals(q)
	if err != nil || d.Streak != 2 || d.Total != 2 {
		t.Fatalf("deferrals %+v, %v", d, err)
	}
	if len(broker.Messages()) != 0 {
		t.Error("a deferred window reached the broker")
	}

	// After MaxDeferral of deferrals the window goes anyway and reports.
	cfg.MaxDeferral = time.Nanosecond
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != 5 {
		t.Fatalf("window after the maximum deferral: %+v, %v", sum, err)
	}
	recs := statusMessages(broker, cfg.StatusTopic)
	if len(recs) != 1 || recs[0].Deferred != 2 || recs[0].DeferredTotal != 2 {
		t.Errorf("status record after two deferrals: %+v", recs)
	}
	if d, _ := uplink.ReadDeferrals(q); d.Streak != 0 || d.Total != 2 {
		t.Errorf("deferrals after a window ran: %+v", d)
	}
}

// A supply below --min-voltage-mv defers the window before the radio goes
// on at all.
func TestWindowDeferredOnLowSupply(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	simCfg := modemsim.Fast()
	simCfg.StartRadioOff = true
	sim := simtest.Start(t, simCfg)
	q, dir := openQueue(t)
	enqueueReadings(t, q, 3, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.MinVoltageMV = 3960 // the simulator reports 3,950 mV
	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if !errors.Is(err, uplink.ErrDeferred) || sum.RadioOnSeconds != 0 {
		t.Fatalf("window on a 3,950 mV supply with --min-voltage-mv 3960: %+v, %v", sum, err)
	}
	if sim.Accounting().RadioOnSeconds != 0 || sim.RadioOn() {
		t.Errorf("the radio went on: %+v", sim.Accounting())
	}
}
