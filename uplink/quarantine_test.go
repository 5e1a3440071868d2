package uplink_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

const deniedTopic = "sites/s7/denied"

func enqueuePoison(t *testing.T, q *queue.Queue, topics ...string) {
	t.Helper()
	var recs []queue.Record
	for _, topic := range topics {
		recs = append(recs, queue.Record{Topic: topic, Payload: []byte(`{"v":1}`), QoS: 1})
	}
	if _, err := q.Enqueue(recs...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func quarantined(t *testing.T, q *queue.Queue) []queue.QuarantinedRecord {
	t.Helper()
	qs, err := q.Quarantined(0, 0)
	if err != nil {
		t.Fatalf("list quarantine: %v", err)
	}
	return qs
}

// Ensure a record an MQTT 5 broker refuses (mochi's ACL: PUBACK 0x87) does
// not block the records behind it, is not deleted but quarantined with the
// reason, and the next window has nothing left to send.
func TestWindowQuarantinesRefusedRecord(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword, DenyPublish: []string{deniedTopic}})
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueuePoison(t, q, "sites/s7/ok", deniedTopic, "sites/s7/ok")
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.MQTTVersion = codec.V5

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || !sum.OK() {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	if sum.Acked != 2 || sum.Refused != 1 || sum.Quarantined != 1 {
		t.Errorf("summary acked %d refused %d quarantined %d, want 2, 1, 1", sum.Acked, sum.Refused, sum.Quarantined)
	}
	if s := sum.String(); !strings.Contains(s, "1 refused by the broker, 1 quarantined") {
		t.Errorf("summary line %q does not count the refused record", s)
	}
	if !broker.WaitCount(2, 5*time.Second) {
		t.Fatalf("broker routed %d messages, want the 2 allowed ones", broker.Count())
	}
	qs := quarantined(t, q)
	if len(qs) != 1 || qs[0].Seq != 2 || qs[0].Topic != deniedTopic || !strings.Contains(qs[0].Reason, "0x87") {
		t.Fatalf("quarantine = %+v, want seq 2 on %s refused with 0x87", qs, deniedTopic)
	}
	if d := depth(t, q); d != 0 {
		t.Errorf("%d records still queued", d)
	}

	// The next window has nothing left to send: it does not even bring
	// the radio up.
	sum, err = uplink.RunWindow(context.Background(), cfg, q)
	if err != nil || sum.Outcome != uplink.OutcomeSkipped || sum.Sent != 0 || sum.Refused != 0 {
		t.Errorf("next window: %+v, %v; want skipped with nothing sent", sum, err)
	}

	// An operator who fixed the ACL puts it back under the same seq.
	if n, err := q.RetryQuarantined(2); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	recs, err := q.Read(0, 10, 0)
	if err != nil || len(recs) != 1 || recs[0].Seq != 2 {
		t.Errorf("after retry queued %+v, %v; want seq 2", recs, err)
	}
}

// Ensure a window that delivered nothing because the broker refused every
// record it was sent is not "ok".
func TestWindowAllRefusedIsNotOK(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword, DenyPublish: []string{deniedTopic}})
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueuePoison(t, q, deniedTopic, deniedTopic)
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.MQTTVersion = codec.V5
	cfg.NoSeq = true

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if !errors.Is(err, uplink.ErrAllRefused) || sum.OK() || sum.Outcome != uplink.OutcomeFailed {
		t.Fatalf("window: outcome %q, %v; want failed with ErrAllRefused", sum.Outcome, err)
	}
	if sum.Step != "mqtt publish" || !strings.Contains(sum.Error, "2 refused, 2 quarantined") {
		t.Errorf("summary step %q error %q", sum.Step, sum.Error)
	}
	if got := len(quarantined(t, q)); got != 2 {
		t.Errorf("%d quarantined, want 2", got)
	}
	raw, err := q.WindowSummary()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := uplink.ParseSummary(raw)
	if err != nil || stored == nil || stored.OK() || stored.Quarantined != 2 {
		t.Errorf("stored summary %+v, %v", stored, err)
	}
	if sim.RadioOn() {
		t.Error("radio still on")
	}
}

// Ensure that under MQTT 3.1.1, where a broker has no way to refuse one
// record, nothing is silently deleted: mochi disconnects over the denied
// record, which stays queued (mosquitto instead acknowledges and drops it;
// see README "Delivery guarantee").
func TestWindowMQTT311DeniedRecordIsNotDeleted(t *testing.T) {
	broker := startBroker(t, brokertest.Options{Username: testUser, Password: testPassword, DenyPublish: []string{deniedTopic}})
	sim := simtest.Start(t, modemsim.Fast())
	q, dir := openQueue(t)
	enqueuePoison(t, q, "sites/s7/ok", deniedTopic, "sites/s7/ok")
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.MQTTVersion = codec.V311

	sum, err := uplink.RunWindow(context.Background(), cfg, q)
	if err == nil {
		t.Fatalf("window succeeded though mochi disconnects MQTT 3.1.1 clients over a denied PUBLISH: %+v", sum)
	}
	recs, rerr := q.Read(0, 10, 0)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	if !slices.Contains(seqs, 2) {
		t.Errorf("the denied record left the queue: %v", seqs)
	}
	if len(quarantined(t, q)) != 0 {
		t.Errorf("MQTT 3.1.1 quarantined a record on a bare disconnect")
	}
}
