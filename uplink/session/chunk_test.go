package session_test

import (
	"errors"
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
}

func (c *chunkConn) MaxChunk() int { return c.max }

func (c *chunkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// Ensure PUBLISH packets are packed back to back into full chunks of the
// connection's MaxChunk, straddling chunk boundaries.
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
			full, total := 0, 0
			for _, n := range conn.writes {
				if n > conn.max {
					t.Fatalf("write of %d bytes exceeds MaxChunk %d", n, conn.max)
				}
				if n == conn.max {
					full++
				}
				total += n
			}
			if int64(total) != res.BytesOut || len(conn.writes) != res.Writes {
				t.Errorf("Result BytesOut=%d Writes=%d, conn saw %d bytes in %d writes", res.BytesOut, res.Writes, total, len(conn.writes))
			}
			// Partial chunks are allowed only where the session must wait:
			// behind CONNECT, when the in-flight window is full, at the end
			// of the queue, and DISCONNECT.
			t.Logf("writes: %v", conn.writes)
			partial := len(conn.writes) - full
			maxPartial := 3
			if qos == 1 {
				maxPartial += len(recs) / (cfg.InFlight / 2)
			}
			if partial > maxPartial {
				t.Errorf("%d of %d writes were partial chunks, want at most %d: %v", partial, len(conn.writes), maxPartial, conn.writes)
			}
		})
	}
}

// Ensure a long wait for acknowledgements keeps the connection alive with
// PINGREQ and still ends at ReplyTimeout.
func TestRunKeepAliveDuringLongWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 1 s keep-alive")
	}
	broker := startStrict(t, codec.Connack{RetainAvailable: true}, func(b *strictBroker) { b.dropAcks = true })
	cfg := testConfig(codec.V5)
	cfg.KeepAlive = 1
	cfg.ReplyTimeout = 2500 * time.Millisecond
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
}
