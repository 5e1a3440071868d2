package uplink_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

func statusMessages(b *brokertest.Broker, topic string) []uplink.StatusRecord {
	var out []uplink.StatusRecord
	for _, m := range b.Messages() {
		if m.Topic != topic {
			continue
		}
		var r uplink.StatusRecord
		if json.Unmarshal(m.Payload, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// Every window publishes a retained status record right after CONNACK,
// with the queue, the link, the month's usage and the next contact; a
// window that ends without DISCONNECT leaves its will instead.
func TestWindowPublishesStatusAndWill(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueueReadings(t, q, 20, 1)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.StatusTopic = "uploader/site-7/status"
	cfg.WillTopic = cfg.StatusTopic
	next := time.Now().Add(time.Hour).Truncate(time.Second)
	cfg.NextContact = func() time.Time { return next }

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Acked != 20 || !sum.StatusSent {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	recs := statusMessages(broker, cfg.StatusTopic)
	if len(recs) != 1 {
		t.Fatalf("%d status records, want 1", len(recs))
	}
	r := recs[0]
	if r.ClientID != "site-7" || r.State != "connected" || r.QueueDepth != 20 || r.CSQ == 0 ||
		r.RSRP == nil || *r.RSRP != -77 || r.SINR == nil || r.SupplyMV != 3950 || r.Cell == "" ||
		r.NextContact == nil || !r.NextContact.Equal(next) || r.Window.MQTTBytesOut == 0 || r.Version == "" {
		t.Errorf("status record %+v", r)
	}
	if r.PreviousWindow != nil {
		t.Errorf("the first window reports a previous one: %+v", r.PreviousWindow)
	}
	for _, m := range broker.Messages() {
		if m.Topic == cfg.StatusTopic && !m.Retain {
			t.Error("the status record is not retained")
		}
	}
	month, err := uplink.MonthUsage(q, time.Now())
	if err != nil || month.Windows != 1 || month.MQTTBytesOut != sum.MQTTBytesOut || month.AirBytes <= month.MQTTBytesOut {
		t.Errorf("month usage %+v, %v (window sent %d MQTT bytes)", month, err, sum.MQTTBytesOut)
	}

	// The second window reports the first, and dies in its session
	// (cancelled, as SIGTERM does): no DISCONNECT, so the broker publishes
	// the will.
	enqueueReadings(t, q, 200, 1)
	if err := sim.SetFaults(modemsim.Faults{SlowAnswers: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	cfg.Progress = func(p uplink.Progress) {
		if p.Acked > 0 {
			once.Do(cancel)
		}
	}
	if _, err := uplink.RunWindow(ctx, cfg, q); err == nil {
		t.Fatal("the cancelled window succeeded")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs = statusMessages(broker, cfg.StatusTopic)
		if n := len(recs); n >= 3 && recs[n-1].State == "lost" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no will after a window without DISCONNECT: %+v", recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := recs[1]
	if second.State != "connected" || second.PreviousWindow == nil || second.PreviousWindow.Outcome != "ok" ||
		second.PreviousWindow.Acked != 20 || second.Month.Windows != 1 {
		t.Errorf("second window's record %+v", second)
	}
}

// pacedCloseSite is a site whose module holds back what is not yet on the
// air, in real time (NB-IoT's uplink rate, a short round trip), so a quick
// close right after the DISCONNECT would drop it.
func pacedCloseSite(t *testing.T) (*brokertest.Broker, *modemsim.Sim, *queue.Queue, uplink.Config) {
	t.Helper()
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword})
	simCfg := modemsim.Fast()
	simCfg.UplinkRate = modemsim.NBIoT().UplinkRate
	simCfg.RoundTrip = 200 * time.Millisecond
	sim := simtest.Start(t, simCfg)
	q, dir := openQueue(t)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.WindowTimeout = 5 * time.Minute
	cfg.RegistrationTimeout = 5 * time.Minute
	return broker, sim, q, cfg
}

// On a paced link a clean window's DISCONNECT reaches the broker: the
// teardown waits for AT+CIPACK before the quick close, which would drop
// what is not yet on the air, so the broker publishes no will.
func TestCleanWindowDisconnectReachesBroker(t *testing.T) {
	broker, sim, q, cfg := pacedCloseSite(t)
	cfg.StatusTopic = "uploader/site-7/status"
	cfg.WillTopic = cfg.StatusTopic
	for i := range 2 {
		enqueueReadings(t, q, 5, 1)
		if sum, err := uplink.RunWindow(context.Background(), cfg, q); err != nil || sum.Acked != 5 {
			t.Fatalf("window %d: %+v, %v", i+1, sum, err)
		}
	}
	acc := sim.Accounting()
	if acc.DroppedAtCloseBytes != 0 {
		t.Errorf("the quick close dropped %d bytes not yet on the air", acc.DroppedAtCloseBytes)
	}
	if acc.AckQueries == 0 {
		t.Error("no AT+CIPACK: the teardown did not wait for the DISCONNECT")
	}
	// The second window's record comes after anything the first one's
	// close made the broker publish.
	recs := statusMessages(broker, cfg.StatusTopic)
	if len(recs) != 2 || recs[0].State != "connected" || recs[1].State != "connected" {
		t.Errorf("status records %+v, want two connected ones and no will", recs)
	}
}

// Without a will, a lost DISCONNECT costs nothing but a line in the
// broker's log, so a clean window closes at once instead of keeping the
// radio on for the DISCONNECT's round trip.
func TestCleanWindowWithoutWillClosesAtOnce(t *testing.T) {
	broker, sim, q, cfg := pacedCloseSite(t)
	enqueueReadings(t, q, 5, 1)
	if sum, err := uplink.RunWindow(context.Background(), cfg, q); err != nil || sum.Acked != 5 {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	if n := sim.Accounting().AckQueries; n != 0 {
		t.Errorf("%d AT+CIPACK queries: the teardown waited for the DISCONNECT without a will", n)
	}
	if n := broker.Count(); n != 5 {
		t.Errorf("broker received %d readings, want 5", n)
	}
}
