package modem_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// countingListener counts the bytes a peer receives before the connection
// ends.
func countingListener(t *testing.T) (host string, port int, got <-chan int) {
	t.Helper()
	ln := testkit.Listen(t)
	ch := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		ch <- int(n)
	}()
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port, ch
}

// A quick close (AT+CIPCLOSE=1) drops what the module has not put on the
// air yet, as a real module does: bytes written just before it never reach
// the peer unless the host first waits for AT+CIPACK to report them
// acknowledged. This is the case of a window's DISCONNECT.
func TestQuickCloseDropsWhatIsNotOnTheAir(t *testing.T) {
	for _, drain := range []bool{false, true} {
		name := map[bool]string{false: "close at once", true: "close after CIPACK"}[drain]
		t.Run(name, func(t *testing.T) {
			host, port, got := countingListener(t)
			// Real time, so what is in the air really is held back; a
			// slow uplink (42 bytes take 0.4 s), so the close surely
			// comes before the transfer ends, even on a loaded machine.
			cfg := modemsim.Fast()
			cfg.UplinkRate = 100
			cfg.RoundTrip = 200 * time.Millisecond
			sim, m := startSim(t, cfg, modem.Options{QuickSend: true})
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			c := bringUp(t, ctx, m, host, port)
			payload := []byte{0xe0, 0x00} // an MQTT DISCONNECT
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			for drain {
				_, _, unacked, err := c.Acked(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if unacked == 0 {
					break
				}
			}
			if err := c.CloseContext(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			select {
			case n = <-got:
			case <-ctx.Done():
				t.Fatal("the peer's connection never ended")
			}
			dropped := sim.Accounting().DroppedAtCloseBytes
			switch {
			case drain && (n != len(payload) || dropped != 0):
				t.Errorf("after CIPACK: peer got %d of %d bytes, %d dropped", n, len(payload), dropped)
			case !drain && (n != 0 || dropped != int64(len(payload))):
				t.Errorf("quick close at once: peer got %d bytes, %d dropped; want 0 and %d", n, dropped, len(payload))
			}
		})
	}
}
