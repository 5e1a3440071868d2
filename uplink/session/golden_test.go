package session_test

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// Ensure the exact bytes a session writes stay what they were reviewed to
// be: CONNECT with credentials, PUBLISH packets (MQTT 5: aliases after the
// first use of a topic, the "seq" property), PINGREQ proving QoS 0 records,
// DISCONNECT. The files are hex dumps, one packet per line.
func TestRunGoldenBytes(t *testing.T) {
	tests := []struct {
		name   string
		v      codec.Version
		qos    byte
		noPipe bool
	}{
		// All six records fit the first chunk, before CONNACK.
		{"v3.1.1-qos1", codec.V311, 1, false},
		// MQTT 5 allows only one QoS 1 record before CONNACK (a Receive
		// Maximum of 1 is legal); it goes without an alias, and the two
		// aliases then go to the next two topics.
		{"v5-qos1-aliases", codec.V5, 1, false},
		// Every record fits the first chunk, before CONNACK: no aliases
		// and a single PINGREQ at the end.
		{"v5-qos0-pipelined", codec.V5, 0, false},
		// After CONNACK: aliases, and a PINGREQ after every AckBatch (4)
		// QoS 0 records.
		{"v5-qos0-aliases", codec.V5, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connack := codec.Connack{RetainAvailable: true}
			if tt.v == codec.V5 {
				connack.TopicAliasMaximum = 2
			}
			broker := startStrict(t, connack, func(b *strictBroker) { b.version = tt.v })
			recs := makeRecords(6, tt.qos, "site/7/temperature", "site/7/humidity", "site/7/battery")
			cfg := testConfig(tt.v)
			cfg.AckBatch = 4
			cfg.NoPipeline = tt.noPipe
			if _, err := session.Run(runCtx(t), dialFake(t, broker.addr), newMemStore(recs), cfg); err != nil {
				t.Fatalf("Run: %v", err)
			}
			broker.wait(t)
			broker.mu.Lock()
			got := dumpPackets(broker.stream)
			broker.mu.Unlock()

			testkit.Golden(t, filepath.Join("testdata", tt.name+".hex"), []byte(got))
		})
	}
}

// dumpPackets renders a byte stream as one hex line per MQTT packet.
func dumpPackets(stream []byte) string {
	var sb strings.Builder
	for len(stream) > 0 {
		remaining, n, err := codec.DecodeVarint(stream[1:])
		if err != nil || 1+n+remaining > len(stream) {
			sb.WriteString(hex.EncodeToString(stream) + " (incomplete)\n")
			break
		}
		size := 1 + n + remaining
		sb.WriteString(hex.EncodeToString(stream[:size]) + "\n")
		stream = stream[size:]
	}
	return sb.String()
}
