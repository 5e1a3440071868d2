package session_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// roomyLimits is what a broker without small limits announces.
var roomyLimits = codec.Connack{ReceiveMaximum: 16, TopicAliasMaximum: 8, RetainAvailable: true}

// Ensure a record whose topic the codec rejects is quarantined with the
// reason and the records behind it are delivered.
func TestRunQuarantinesUnencodableRecord(t *testing.T) {
	recs := makeRecords(5, 1, "site/7/a", "site/7/b")
	recs[2].Topic = "site/+/wild"
	store := newMemStore(recs)
	broker := startStrict(t, roomyLimits, nil)
	cfg := testConfig(codec.V5)
	res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	broker.wait(t)
	want := slices.Delete(slices.Clone(recs), 2, 3)
	checkDelivered(t, codec.V5, broker.received(), want, 1)
	if got := store.quarantinedSeqs(); !slices.Equal(got, []uint64{3}) {
		t.Errorf("quarantined %v, want [3]", got)
	}
	if r := store.reason(3); !strings.Contains(r, "cannot be encoded") || !strings.Contains(r, "site/+/wild") {
		t.Errorf("reason %q does not say why", r)
	}
	if res.Skipped != 1 || res.Quarantined != 1 || res.Acked != 4 || len(store.remaining()) != 0 {
		t.Errorf("Result %+v, remaining %v", res, store.remaining())
	}
}

// Ensure a refusal the broker means for now (Quota exceeded) leaves the
// record queued instead of quarantining it.
func TestRunLeavesQuotaExceededQueued(t *testing.T) {
	recs := makeRecords(6, 1, "site/7/a", "site/7/busy")
	store := newMemStore(recs)
	broker := startStrict(t, roomyLimits, func(b *strictBroker) { b.refuseTopic, b.refuseReason = "site/7/busy", 0x97 })
	res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := store.remaining(); !slices.Equal(got, []uint64{2, 4, 6}) {
		t.Errorf("left queued %v, want the refused [2 4 6]", got)
	}
	if res.Rejected != 3 || res.Quarantined != 0 || len(store.quarantinedSeqs()) != 0 {
		t.Errorf("Rejected=%d Quarantined=%d (%v), want 3 and none", res.Rejected, res.Quarantined, store.quarantinedSeqs())
	}
}

// Ensure a store that cannot quarantine fails the session, naming the step,
// and what was acknowledged is still deleted.
func TestRunFailsWhenQuarantineFails(t *testing.T) {
	recs := makeRecords(4, 1, "site/7/a", "site/7/denied")
	store := newMemStore(recs)
	store.quarErr = errors.New("disk on fire")
	broker := startStrict(t, roomyLimits, func(b *strictBroker) { b.refuseTopic, b.refuseReason = "site/7/denied", 0x87 })
	_, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
	var se *fault.StepError
	if !errors.As(err, &se) || se.Step != session.StepQueueQuarantine || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Run = %v, want a %q step error", err, session.StepQueueQuarantine)
	}
	if slices.Contains(store.deletedSeqs(), 2) {
		t.Errorf("the refused record was deleted")
	}
	if !slices.Contains(store.deletedSeqs(), 1) {
		t.Errorf("acknowledged record 1 not deleted: %v", store.deletedSeqs())
	}
}

// Ensure a record that makes an MQTT 5 broker disconnect over a malformed
// packet is found and quarantined within a few windows, without
// quarantining an innocent record (the QoS 0 one ahead of it, which the
// broker took without a word) and without blocking the records behind it.
func TestRunQuarantinesRecordTheBrokerDisconnectsOver(t *testing.T) {
	recs := makeRecords(8, 1, "site/7/a")
	recs[1].QoS = 0
	recs[2].Topic = "site/7/rejected-by-broker"
	store := newMemStore(recs)
	delivered := map[string]bool{}
	windows := 0
	for ; windows < 6 && len(store.remaining()) > 0; windows++ {
		broker := startStrict(t, roomyLimits, func(b *strictBroker) { b.failTopic, b.failReason = "site/7/rejected-by-broker", 0x90 })
		res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
		broker.wait(t)
		for _, r := range broker.received() {
			delivered[r.Seq] = true
		}
		t.Logf("window %d: %+v, err %v; remaining %v, struck %v, quarantined %v",
			windows+1, res, err, store.remaining(), store.struck, store.quarantinedSeqs())
		if err != nil && !errors.Is(err, session.ErrBrokerDisconnect) {
			t.Fatalf("window %d: %v", windows+1, err)
		}
		if err != nil && !strings.Contains(err.Error(), "0x90") {
			t.Errorf("window %d error %q does not name the broker's reason", windows+1, err)
		}
	}
	if got := store.quarantinedSeqs(); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("quarantined %v after %d windows, want exactly the record the broker disconnects over [3]", got, windows)
	}
	if r := store.reason(3); !strings.Contains(r, "DISCONNECT reason 0x90") || !strings.Contains(r, "only record unacknowledged") {
		t.Errorf("reason %q", r)
	}
	if left := store.remaining(); len(left) != 0 {
		t.Errorf("still queued after %d windows: %v", windows, left)
	}
	for _, r := range recs {
		if r.Seq != 3 && !delivered[strconv.FormatUint(r.Seq, 10)] {
			t.Errorf("record %d never reached a broker", r.Seq)
		}
	}
	if windows > 4 {
		t.Errorf("took %d windows, want at most 4 (strike the QoS 0 record ahead, strike the culprit, convict it, deliver the rest)", windows)
	}
}

// Ensure a connection that simply ends (no DISCONNECT, or one that blames
// no packet) strikes and quarantines nothing: only a DISCONNECT naming a
// malformed packet makes a record suspect.
func TestRunDoesNotBlameRecordsForLinkFailures(t *testing.T) {
	tests := []struct {
		name   string
		reason byte
	}{
		{"connection closed", 0},
		{"server busy", 0x89},
		{"server shutting down", 0x8B},
		{"keep alive timeout", 0x8D},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := makeRecords(4, 1, "site/7/a", "site/7/cut")
			store := newMemStore(recs)
			broker := startStrict(t, roomyLimits, func(b *strictBroker) { b.failTopic, b.failReason = "site/7/cut", tt.reason })
			res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
			if err == nil {
				t.Fatal("Run succeeded though the broker ended the connection")
			}
			if res.Struck != 0 || res.Quarantined != 0 || len(store.struck) != 0 || len(store.quarantinedSeqs()) != 0 {
				t.Errorf("a link failure blamed records: %+v, struck %v, quarantined %v", res, store.struck, store.quarantinedSeqs())
			}
			if !slices.Contains(store.remaining(), 2) {
				t.Errorf("record 2 left the queue: %v", store.remaining())
			}
		})
	}
}
