package session_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

func testConfig(v codec.Version) session.Config {
	return session.Config{
		Version:      v,
		ClientID:     "board-1",
		CleanStart:   true,
		KeepAlive:    60,
		Username:     testUser,
		Password:     []byte(testPassword),
		ReplyTimeout: 5 * time.Second,
		TopicAliases: true,
		SeqProperty:  true,
	}
}

func runCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkDelivered fails unless the broker received exactly want, in order,
// with the queued topic, payload and QoS (capped at maxQoS).
func checkDelivered(t *testing.T, v codec.Version, got []received, want []session.Record, maxQoS byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("broker received %d PUBLISH packets, want %d", len(got), len(want))
	}
	for i, r := range want {
		g := got[i]
		if g.Topic != r.Topic || string(g.Payload) != string(r.Payload) || g.QoS != min(r.QoS, maxQoS) {
			t.Fatalf("message %d: got topic %q payload %q QoS %d, want %q %q %d",
				i, g.Topic, g.Payload, g.QoS, r.Topic, r.Payload, min(r.QoS, maxQoS))
		}
		if v == codec.V5 && g.Seq != strconv.FormatUint(r.Seq, 10) {
			t.Fatalf("message %d: user property seq = %q, want %d", i, g.Seq, r.Seq)
		}
	}
}

// Ensure every record reaches a real broker in order and is deleted, for
// every protocol level and QoS.
func TestRunDeliversAllRecordsInOrder(t *testing.T) {
	topics := []string{"site/7/temperature", "site/7/humidity", "site/7/battery"}
	for _, v := range []codec.Version{codec.V31, codec.V311, codec.V5} {
		for _, qos := range []byte{0, 1, 2} {
			t.Run("v"+v.String()+"/qos"+strconv.Itoa(int(qos)), func(t *testing.T) {
				broker := startMochi(t, nil)
				recs := makeRecords(300, qos, topics...)
				store := newMemStore(recs)
				cfg := testConfig(v)
				cfg.ChunkSize = 256 // many chunks, packets straddling them
				cfg.InFlight = 8
				cfg.BatchRecords = 50
				cfg.AckBatch = 32
				var progress []session.Progress
				cfg.Progress = func(p session.Progress) { progress = append(progress, p) }

				res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkDelivered(t, v, broker.hook.received(), recs, 2)
				if res.Sent != len(recs) || res.Acked != len(recs) {
					t.Errorf("Result Sent=%d Acked=%d, want %d each", res.Sent, res.Acked, len(recs))
				}
				if left := store.remaining(); len(left) != 0 {
					t.Errorf("records left in the store: %v", left)
				}
				store.checkClean(t)
				if len(progress) == 0 || progress[len(progress)-1].Acked != len(recs) {
					t.Errorf("Progress calls %v, want the last to report %d acked", progress, len(recs))
				}
				if res.BytesIn == 0 || res.BytesOut == 0 || res.Writes == 0 {
					t.Errorf("Result byte counts not filled: %+v", res)
				}
			})
		}
	}
}

// Ensure a refused login names the reason and deletes nothing.
func TestRunRefusedLogin(t *testing.T) {
	// mochi answers a bad password with return code 5 below MQTT 5.
	tests := []struct {
		v      codec.Version
		reason string
	}{
		{codec.V31, "not authorized"},
		{codec.V311, "not authorized"},
		{codec.V5, "bad user name or password"},
	}
	for _, tt := range tests {
		v := tt.v
		t.Run("v"+v.String(), func(t *testing.T) {
			broker := startMochi(t, nil)
			recs := makeRecords(50, 1)
			store := newMemStore(recs)
			cfg := testConfig(v)
			cfg.Password = []byte("wrong")

			res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
			var refused *session.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Run error = %v, want a *RefusedError", err)
			}
			if !errors.Is(err, codec.ErrConnectionRefused) {
				t.Errorf("error %v does not wrap codec.ErrConnectionRefused", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "broker refused connection: "+tt.reason) || !strings.HasPrefix(msg, session.StepConnect) {
				t.Errorf("error %q should name the step and the reason", msg)
			}
			if store.ackCalls != 0 || len(store.remaining()) != len(recs) {
				t.Errorf("refused session touched the store: %d Ack calls, %d of %d records left",
					store.ackCalls, len(store.remaining()), len(recs))
			}
			if res.Acked != 0 || res.BytesOut > int64(session.DefaultChunkSize) {
				t.Errorf("refused session: Acked=%d BytesOut=%d, want 0 and at most one chunk", res.Acked, res.BytesOut)
			}
			if len(broker.hook.received()) != 0 {
				t.Errorf("broker accepted messages from a refused client")
			}
		})
	}
}

// Ensure a broker that drops the connection mid-stream ends the session with
// ErrBrokerDisconnect, and exactly the acknowledged records are deleted.
func TestRunBrokerClosesMidStream(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run("qos"+strconv.Itoa(int(qos)), func(t *testing.T) {
			broker := startMochi(t, nil)
			broker.hook.setCloseAfter(120)
			recs := makeRecords(400, qos, "a/b", "a/c")
			store := newMemStore(recs)
			cfg := testConfig(codec.V311)
			cfg.ChunkSize = 512
			cfg.AckBatch = 16
			// A window smaller than the 120 records before the close, so
			// acknowledgements arrive (and are applied) before it.
			cfg.InFlight = 32

			res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
			if !errors.Is(err, session.ErrBrokerDisconnect) {
				t.Fatalf("Run error = %v, want ErrBrokerDisconnect", err)
			}
			var se *fault.StepError
			if !errors.As(err, &se) || (se.Step != session.StepPublish && se.Step != session.StepWaitAcks) {
				t.Errorf("error %v should name the publish or wait step", err)
			}
			got := broker.hook.received()
			deleted := store.deletedSeqs()
			if res.Acked != len(deleted) {
				t.Errorf("Result.Acked = %d, store deleted %d", res.Acked, len(deleted))
			}
			// The 120th message was dropped unacknowledged by the broker.
			for _, seq := range deleted {
				if seq >= 120 {
					t.Errorf("seq %d deleted though the broker never acknowledged it", seq)
				}
			}
			if qos > 0 && len(deleted) == 0 {
				t.Errorf("no acknowledged record was deleted before the close")
			}
			left := store.remaining()
			if len(left)+len(deleted) != len(recs) {
				t.Errorf("%d left + %d deleted != %d records", len(left), len(deleted), len(recs))
			}
			for i, r := range got[:len(got)-1] {
				if seqOfPayload(r.Payload) != uint64(i+1) {
					t.Fatalf("broker message %d has payload %q, want record %d", i, r.Payload, i+1)
				}
			}
			store.checkClean(t)
		})
	}
}

// Ensure the broker's Maximum QoS downgrades records and says so.
func TestRunDowngradesToBrokerMaximumQoS(t *testing.T) {
	broker := startMochi(t, nil)
	broker.srv.Options.Capabilities.MaximumQos = 1
	recs := makeRecords(40, 2)
	store := newMemStore(recs)
	cfg := testConfig(codec.V5)

	res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkDelivered(t, codec.V5, broker.hook.received(), recs, 1)
	if res.Downgraded != len(recs) || res.Acked != len(recs) {
		t.Errorf("Downgraded=%d Acked=%d, want %d each", res.Downgraded, res.Acked, len(recs))
	}
}

// Ensure records are read from the store in bounded batches, each after
// the last one read, and that MaxRecords stops the session early.
func TestRunBatchesAndMaxRecords(t *testing.T) {
	broker := startMochi(t, nil)
	recs := makeRecords(100, 1)
	store := newMemStore(recs)
	cfg := testConfig(codec.V311)
	cfg.BatchRecords = 7
	cfg.MaxRecords = 30

	res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkDelivered(t, codec.V311, broker.hook.received(), recs[:30], 2)
	if res.Sent != 30 || res.Acked != 30 {
		t.Errorf("Sent=%d Acked=%d, want 30", res.Sent, res.Acked)
	}
	if got, want := store.remaining(), seqsOf(recs[30:]); !slices.Equal(got, want) {
		t.Errorf("remaining = %v, want %v", got, want)
	}
	if store.reads != 5 { // 7+7+7+7+2
		t.Errorf("store was read %d times, want 5", store.reads)
	}
}

// Ensure an empty queue still makes a clean, short session.
func TestRunEmptyQueue(t *testing.T) {
	broker := startMochi(t, nil)
	store := newMemStore(nil)
	res, err := session.Run(runCtx(t), broker.dial(t), store, testConfig(codec.V5))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Sent != 0 || res.Acked != 0 || store.ackCalls != 0 {
		t.Errorf("empty queue: %+v, %d Ack calls", res, store.ackCalls)
	}
}

// Ensure records an MQTT 5 broker refuses in its PUBACK or PUBREC are
// counted and quarantined with the broker's reason, while the others
// (also those behind them) are delivered.
func TestRunBrokerRejectsRecords(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run("qos"+strconv.Itoa(int(qos)), func(t *testing.T) {
			broker := startMochi(t, nil)
			broker.hook.mu.Lock()
			broker.hook.denyTopic = "site/7/secret"
			broker.hook.mu.Unlock()
			recs := makeRecords(30, qos, "site/7/temperature", "site/7/secret", "site/7/battery")
			store := newMemStore(recs)

			cfg := testConfig(codec.V5)
			// mochi 2.7.9 checks the ACL before it resolves a topic alias,
			// so an alias-only PUBLISH would slip past the denial.
			cfg.TopicAliases = false

			res, err := session.Run(runCtx(t), broker.dial(t), store, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var delivered []session.Record
			var refused []uint64
			for _, r := range recs {
				if r.Topic == "site/7/secret" {
					refused = append(refused, r.Seq)
				} else {
					delivered = append(delivered, r)
				}
			}
			checkDelivered(t, codec.V5, broker.hook.received(), delivered, 2)
			if res.Rejected != len(refused) || res.Quarantined != len(refused) || res.Acked != len(delivered) {
				t.Errorf("Rejected=%d Quarantined=%d Acked=%d, want %d, %d and %d", res.Rejected, res.Quarantined, res.Acked,
					len(refused), len(refused), len(delivered))
			}
			if got := store.remaining(); len(got) != 0 {
				t.Errorf("left queued %v, want nothing", got)
			}
			if got := store.quarantinedSeqs(); !slices.Equal(got, refused) {
				t.Errorf("quarantined %v, want the refused records %v", got, refused)
			}
			want := "reason 0x87 (not authorized)"
			if r := store.reason(refused[0]); !strings.Contains(r, want) {
				t.Errorf("quarantine reason %q, want it to name %q", r, want)
			}
		})
	}
}
