package session_test

import (
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

func dialFake(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial fake broker: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// smallLimits is what the strict fake broker announces.
var smallLimits = codec.Connack{
	ReceiveMaximum:    2,
	TopicAliasMaximum: 3,
	MaximumPacketSize: 200,
	HasMaximumQoS:     true,
	MaximumQoS:        1,
	RetainAvailable:   false,
}

// Ensure the client honours every limit an MQTT 5 broker announces, and
// that records it cannot send under them stay queued.
func TestRunRespectsBrokerLimits(t *testing.T) {
	broker := startStrict(t, smallLimits, func(b *strictBroker) { b.ackDelay = 200 * time.Microsecond })
	topics := []string{
		"plant/line-1/press-a/temperature", "plant/line-1/press-a/pressure",
		"plant/line-1/press-b/temperature", "plant/line-1/press-b/pressure",
		"plant/line-2/oven/temperature",
	}
	recs := makeRecords(80, 1, topics...)
	for i := range recs {
		switch i % 10 {
		case 3:
			recs[i].QoS = 2 // above the broker's Maximum QoS
		case 7:
			recs[i].QoS = 0
		}
	}
	recs[11].Retain = true
	recs[20].Payload = []byte(strings.Repeat("x", 300)) // above Maximum Packet Size
	recs[30].ExpiresAt = time.Now().Add(-time.Minute)   // already expired
	recs[40].ExpiresAt = time.Now().Add(time.Hour)
	store := newMemStore(recs)
	cfg := testConfig(codec.V5)
	cfg.Username, cfg.Password = "", nil

	res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	broker.wait(t)
	broker.checkNoViolations(t)

	var want []session.Record
	for i, r := range recs {
		if i != 20 && i != 30 {
			want = append(want, r)
		}
	}
	got := broker.received()
	checkDelivered(t, codec.V5, got, want, 1)
	if got, want := store.remaining(), []uint64{31}; !slices.Equal(got, want) {
		t.Errorf("records left queued = %v, want the expired one %v", got, want)
	}
	if got, want := store.quarantinedSeqs(), []uint64{21}; !slices.Equal(got, want) {
		t.Errorf("records quarantined = %v, want the one larger than Maximum Packet Size %v", got, want)
	} else if r := store.reason(21); !strings.Contains(r, "Maximum Packet Size") || !strings.Contains(r, "broker maximum 200") {
		t.Errorf("quarantine reason %q does not say the record is larger than the broker's maximum", r)
	}
	for _, r := range got {
		if r.Seq == "41" && (r.Expiry < 3599 || r.Expiry > 3600) {
			t.Errorf("message expiry of seq 41 = %d s, want about 3600", r.Expiry)
		}
		if r.Seq != "41" && r.Expiry != 0 {
			t.Errorf("seq %s carries a message expiry %d though it has no TTL", r.Seq, r.Expiry)
		}
	}
	wantRes := session.Result{Sent: 78, Acked: 78, Skipped: 1, Quarantined: 1, Expired: 1, Downgraded: 8, RetainCleared: 1}
	if res.Sent != wantRes.Sent || res.Acked != wantRes.Acked || res.Skipped != wantRes.Skipped || res.Quarantined != wantRes.Quarantined ||
		res.Expired != wantRes.Expired || res.Downgraded != wantRes.Downgraded || res.RetainCleared != wantRes.RetainCleared {
		t.Errorf("Result = %+v, want counts %+v", res, wantRes)
	}
	broker.mu.Lock()
	defer broker.mu.Unlock()
	if broker.maxInflight != 2 {
		t.Errorf("at most %d PUBLISH in flight, want the full Receive Maximum of 2 used", broker.maxInflight)
	}
	// The first record goes before CONNACK, by name and without alias; the
	// three aliases then go to topics[1..3] in order of first use, whose 16
	// records each send all but the first by alias alone.
	if want := 3 * 15; broker.aliasedOnly != want {
		t.Errorf("%d PUBLISH packets used an alias alone, want %d", broker.aliasedOnly, want)
	}
}

// Ensure that before CONNACK the client sends at most one chunk, only small
// QoS 0/1 records and, with MQTT 5, at most one QoS 1 PUBLISH.
func TestRunPipelinesOneChunkBeforeConnack(t *testing.T) {
	tests := []struct {
		name      string
		noPipe    bool
		qos       byte
		chunkSize int
		wantQoS1  int
	}{
		{"qos1", false, 1, 300, 1},
		{"off", true, 1, 300, 0},
	}
	// Several chunk sizes, so that in one of them the records fill the first
	// chunk exactly.
	for size := 200; size < 260; size++ {
		tests = append(tests, struct {
			name      string
			noPipe    bool
			qos       byte
			chunkSize int
			wantQoS1  int
		}{"qos0/chunk" + strconv.Itoa(size), false, 0, size, 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			broker := startStrict(t, codec.Connack{RetainAvailable: true}, func(b *strictBroker) {
				b.connackDelay = 20 * time.Millisecond
			})
			recs := makeRecords(100, tt.qos, "s/1")
			store := newMemStore(recs)
			cfg := testConfig(codec.V5)
			cfg.NoPipeline = tt.noPipe
			cfg.ChunkSize = tt.chunkSize
			cfg.AckBatch = 1 // a PINGREQ after every QoS 0 record, once connected

			res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			broker.wait(t)
			broker.checkNoViolations(t)
			broker.mu.Lock()
			before, qos1, connectSize := broker.bytesBeforeAck, broker.qos1BeforeAck, broker.sizes[0]
			broker.mu.Unlock()
			if connectSize+before > cfg.ChunkSize {
				t.Errorf("CONNECT (%d B) and %d B more sent before CONNACK, more than one %d-byte chunk",
					connectSize, before, cfg.ChunkSize)
			}
			if tt.noPipe && before != 0 {
				t.Errorf("NoPipeline: %d bytes sent before CONNACK", before)
			}
			if !tt.noPipe && before == 0 {
				t.Errorf("nothing pipelined behind CONNECT")
			}
			if qos1 != tt.wantQoS1 {
				t.Errorf("%d QoS 1 PUBLISH before CONNACK, want %d", qos1, tt.wantQoS1)
			}
			if res.Acked != len(recs) {
				t.Errorf("Acked = %d, want %d", res.Acked, len(recs))
			}
		})
	}
}

// Ensure the "seq" property and topic aliases are only used when asked.
func TestRunWithoutAliasesOrSeq(t *testing.T) {
	broker := startStrict(t, codec.Connack{RetainAvailable: true, TopicAliasMaximum: 10}, nil)
	recs := makeRecords(20, 1, "s/1", "s/2")
	cfg := testConfig(codec.V5)
	cfg.TopicAliases, cfg.SeqProperty = false, false
	if _, err := session.Run(runCtx(t), dialFake(t, broker.addr), newMemStore(recs), cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	broker.wait(t)
	broker.checkNoViolations(t)
	for i, r := range broker.received() {
		if r.Seq != "" || r.Topic != recs[i].Topic {
			t.Fatalf("message %d = %+v, want topic %q by name and no seq", i, r, recs[i].Topic)
		}
	}
	if broker.aliasedOnly != 0 {
		t.Errorf("%d packets used aliases though TopicAliases is off", broker.aliasedOnly)
	}
}

// Ensure messages a broker delivers from a stored session are acknowledged
// (so it stops resending them) and dropped, without disturbing the upload.
func TestRunAcknowledgesInboundPublish(t *testing.T) {
	var inbound []byte
	for _, p := range []codec.Publish{
		{Topic: "cmd/board-1", Payload: []byte("reboot"), QoS: 1, PacketID: 77},
		{Topic: "cmd/board-1", Payload: []byte("update"), QoS: 2, PacketID: 78},
		{Topic: "cmd/board-1", Payload: []byte("hello"), QoS: 0},
	} {
		b, err := codec.AppendPublish(inbound, codec.V5, &p)
		if err != nil {
			t.Fatal(err)
		}
		inbound = b
	}
	broker := startStrict(t, codec.Connack{RetainAvailable: true, SessionPresent: true}, func(b *strictBroker) {
		b.afterConnack = inbound
	})
	recs := makeRecords(20, 1, "s/1")
	store := newMemStore(recs)
	res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	broker.wait(t)
	broker.checkNoViolations(t)
	checkDelivered(t, codec.V5, broker.received(), recs, 2)
	broker.mu.Lock()
	defer broker.mu.Unlock()
	if want := []string{"PUBACK 77", "PUBREC 78", "PUBCOMP 78"}; !slices.Equal(broker.clientAcks, want) {
		t.Errorf("client acknowledged %v, want %v", broker.clientAcks, want)
	}
	if res.Acked != len(recs) {
		t.Errorf("Acked = %d, want %d", res.Acked, len(recs))
	}
}

// Ensure that with the broker's limits known from its last CONNACK
// (Config.Prior) the client keeps sending through the CONNACK's round trip
// (more than one chunk, several QoS 1 PUBLISHes, topic aliases) without
// breaking any of them; and that a broker which has lowered a limit since
// is warned about, and its new CONNACK is what the Result reports.
func TestRunPipelinesWithinPriorLimits(t *testing.T) {
	limits := codec.Connack{
		ReceiveMaximum: 20, TopicAliasMaximum: 3, MaximumPacketSize: 200,
		HasMaximumQoS: true, MaximumQoS: 1, RetainAvailable: true,
	}
	lowered := limits
	lowered.ReceiveMaximum = 2
	tests := []struct {
		name          string
		broker, prior codec.Connack
		wantWarn      bool
	}{
		{"same limits", limits, limits, false},
		{"receive maximum lowered", lowered, limits, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := startStrict(t, tt.broker, func(b *strictBroker) { b.connackDelay = 50 * time.Millisecond })
			recs := makeRecords(200, 1, "plant/a/temperature", "plant/a/pressure")
			store := newMemStore(recs)
			var logs testkit.SyncBuffer
			cfg := testConfig(codec.V5)
			cfg.ChunkSize = 300
			prior := tt.prior
			cfg.Prior = &prior
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))

			res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			broker.wait(t)
			if !res.Connected || res.Connack.ReceiveMaximum != tt.broker.ReceiveMaximum {
				t.Errorf("Result.Connected %v, Connack %+v; want the broker's new CONNACK", res.Connected, res.Connack)
			}
			if warned := strings.Contains(logs.String(), "lowered its limits"); warned != tt.wantWarn {
				t.Errorf("warning logged = %v, want %v; log:\n%s", warned, tt.wantWarn, logs.String())
			}
			if tt.wantWarn {
				return // the strict broker has recorded the breach a real one closes the connection over
			}
			broker.checkNoViolations(t)
			checkDelivered(t, codec.V5, broker.received(), recs, 1)
			broker.mu.Lock()
			before, qos1, connectSize := broker.bytesBeforeAck, broker.qos1BeforeAck, broker.sizes[0]
			broker.mu.Unlock()
			if connectSize+before <= cfg.ChunkSize || connectSize+before > session.PriorPipelineChunks*cfg.ChunkSize {
				t.Errorf("CONNECT and %d B sent before CONNACK; want more than one chunk and at most %d chunks of %d B",
					before, session.PriorPipelineChunks, cfg.ChunkSize)
			}
			if qos1 < 2 || qos1 > int(limits.ReceiveMaximum) {
				t.Errorf("%d QoS 1 PUBLISH before CONNACK, want 2..%d", qos1, limits.ReceiveMaximum)
			}
			if res.Acked != len(recs) {
				t.Errorf("Acked = %d, want %d", res.Acked, len(recs))
			}
		})
	}
}
