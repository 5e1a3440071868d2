package session_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// chunkConn records the size of every Write and advertises a send limit the
// way the modem connection does.
type chunkConn struct {
	net.Conn
	max    int
	mu     sync.Mutex
	writes []int
	data   [][]byte
}

func (c *chunkConn) MaxChunk() int { return c.max }

func (c *chunkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(b))
	c.data = append(c.data, append([]byte(nil), b...))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// Ensure PUBLISH packets are packed back to back into chunks of at most the
// connection's MaxChunk that end on packet boundaries: a chunk is cut short
// only when the next packet does not fit in it.
func TestRunFillsChunks(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(map[byte]string{0: "qos0", 1: "qos1"}[qos], func(t *testing.T) {
			broker := startMochi(t, nil)
			conn := &chunkConn{Conn: broker.dial(t), max: 512}
			recs := makeRecords(500, qos, "site/7/temperature", "site/7/humidity")
			cfg := testConfig(codec.V311)
			cfg.InFlight = 100

			res, err := session.Run(runCtx(t), conn, newMemStore(recs), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkDelivered(t, codec.V311, broker.hook.received(), recs, 2)
			largest := 0
			for _, w := range conn.data {
				for _, n := range packetLens(t, w) {
					largest = max(largest, n)
				}
			}
			nearlyFull, total := 0, 0
			for _, w := range conn.data {
				if len(w) > conn.max {
					t.Fatalf("write of %d bytes exceeds MaxChunk %d", len(w), conn.max)
				}
				if len(w) > conn.max-largest {
					nearlyFull++
				}
				total += len(w)
			}
			if int64(total) != res.BytesOut || len(conn.data) != res.Writes {
				t.Errorf("Result BytesOut=%d Writes=%d, conn saw %d bytes in %d writes", res.BytesOut, res.Writes, total, len(conn.data))
			}
			// Short chunks are allowed only where the session must wait:
			// behind CONNECT, when the in-flight window is full, at the end
			// of the queue, and DISCONNECT.
			t.Logf("writes: %v (largest packet %d)", conn.writes, largest)
			short := len(conn.data) - nearlyFull
			maxShort := 3
			if qos == 1 {
				maxShort += len(recs) / (cfg.InFlight / 2)
			}
			if short > maxShort {
				t.Errorf("%d of %d writes were short chunks, want at most %d: %v", short, len(conn.data), maxShort, conn.writes)
			}
		})
	}
}

// Ensure a packet larger than a chunk is written whole, by itself, and the
// packets around it still end their chunks on packet boundaries.
func TestRunWritesOversizePacketAlone(t *testing.T) {
	broker := startMochi(t, nil)
	conn := &chunkConn{Conn: broker.dial(t), max: 256}
	recs := makeRecords(40, 1, "site/7/temperature")
	big := make([]byte, 700)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	recs[17].Payload = big
	res, err := session.Run(runCtx(t), conn, newMemStore(recs), testConfig(codec.V311))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkDelivered(t, codec.V311, broker.hook.received(), recs, 1)
	oversize := 0
	for _, w := range conn.data {
		lens := packetLens(t, w)
		if len(w) > conn.max {
			oversize++
			if len(lens) != 1 {
				t.Errorf("write of %d bytes holds %d packets; an oversize packet goes alone", len(w), len(lens))
			}
		}
	}
	if oversize != 1 {
		t.Errorf("%d writes larger than MaxChunk, want 1 (the 700-byte record): %v", oversize, conn.writes)
	}
	if res.Acked != len(recs) {
		t.Errorf("acked %d of %d", res.Acked, len(recs))
	}
}

// packetLens splits one write into the MQTT packets it holds and fails the
// test unless the write ends exactly at a packet boundary.
func packetLens(t *testing.T, w []byte) []int {
	t.Helper()
	var lens []int
	d := codec.NewDecoder(bytes.NewReader(w), codec.V311, 1<<20)
	for {
		p, err := d.Next()
		if errors.Is(err, io.EOF) {
			return lens
		}
		if err != nil {
			t.Fatalf("write of %d bytes does not hold whole packets (packets straddle writes): %v", len(w), err)
		}
		lens = append(lens, p.Size)
	}
}

// Ensure a long wait for acknowledgements keeps the connection alive with
// PINGREQ at the keep-alive interval in force (ours, or the broker's MQTT 5
// Server Keep Alive, which replaces it) and still ends at ReplyTimeout.
func TestRunKeepAliveDuringLongWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 1 s keep-alive")
	}
	tests := []struct {
		name      string
		keepAlive uint16
		connack   codec.Connack
	}{
		{"ours", 1, codec.Connack{RetainAvailable: true}},
		{"server keep alive", 60, codec.Connack{RetainAvailable: true, HasServerKeepAlive: true, ServerKeepAlive: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := startStrict(t, tt.connack, func(b *strictBroker) { b.dropAcks = true })
			cfg := testConfig(codec.V5)
			cfg.KeepAlive = tt.keepAlive
			cfg.ReplyTimeout = 2500 * time.Millisecond
			var seen codec.Connack
			cfg.OnConnack = func(c codec.Connack) { seen = c }
			store := newMemStore(makeRecords(3, 1))
			conn := dialFake(t, broker.addr)
			_, err := session.Run(runCtx(t), conn, store, cfg)
			if !errors.Is(err, session.ErrReplyTimeout) {
				t.Fatalf("Run error = %v, want ErrReplyTimeout", err)
			}
			_ = conn.Close()
			broker.wait(t)
			broker.mu.Lock()
			defer broker.mu.Unlock()
			if broker.pingreqs < 2 {
				t.Errorf("%d PINGREQ during a 2.5 s wait with a 1 s keep-alive, want at least 2", broker.pingreqs)
			}
			if len(store.remaining()) != 3 {
				t.Errorf("unacknowledged records deleted")
			}
			if seen.HasServerKeepAlive != tt.connack.HasServerKeepAlive || seen.ServerKeepAlive != tt.connack.ServerKeepAlive {
				t.Errorf("OnConnack saw %+v, want the broker's CONNACK %+v", seen, tt.connack)
			}
		})
	}
}
