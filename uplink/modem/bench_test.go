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

// discardListener accepts connections and throws their bytes away, so the
// module's receive buffer never fills during a send benchmark.
func discardListener(tb testing.TB) (string, int) {
	tb.Helper()
	ln := testkit.Listen(tb)
	serveEach(tb, ln, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
	})
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// BenchmarkWriteThroughput measures Conn.Write through the simulator with
// its UART paced at 115200 baud (8N1: 11,520 bytes/s each way) and no
// network latency. line-% is payload bytes/s against that line rate.
func BenchmarkWriteThroughput(b *testing.B) {
	for _, bc := range []struct {
		name       string
		quick      bool
		limit      int
		turnaround time.Duration // module processing per AT command
	}{
		{"quick-1460", true, 0, 0},
		{"quick-1024", true, 1024, 0},
		{"normal-1460", false, 0, 0},
		{"quick-1460-turnaround-50ms", true, 0, 50 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			host, port := discardListener(b)
			cfg := modemsim.Fast()
			cfg.Baud = 115200
			cfg.Turnaround = bc.turnaround
			_, m := startSim(b, cfg, modem.Options{QuickSend: bc.quick, SendLimit: bc.limit})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := bringUp(b, ctx, m, host, port)
			payload := binaryPayload(4 * c.MaxChunk())
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := c.Write(payload); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			rate := float64(b.N*len(payload)) / elapsed.Seconds()
			b.ReportMetric(rate, "payload-B/s")
			b.ReportMetric(100*rate/11520, "line-%")
			st := m.Stats()
			b.ReportMetric(float64(st.UARTWritten)/float64(st.PayloadSent), "uart-B/payload-B")
		})
	}
}
