package modem

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"\r\nOK\r\n",
	"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
	"\r\n> ",
	"\r\n+CIPRXGET: 1\r\n\r\n+CIPRXGET: 2,4,4\r\n\r\nOK\r\n\r\nOK\r\n",
	"\r\n+CIPRXGET: 2,1460,0\r\n",
	"\r\n+CIPRXGET: 2,-1,0\r\n+CIPRXGET: 2, 3 ,x\r\nabc",
	"\r\nOK\r\n\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n",
	"\r\nERROR\r\n\r\nALREADY CONNECT\r\n",
	"\r\n+CME ERROR: 30\r\n\r\n+CME ERROR: no network service\r\n",
	"\r\nDATA ACCEPT: 5\r\n\r\nCLOSED\r\n\r\n+PDP: DEACT\r\n\r\nRDY\r\n",
	"\r\n+CEREG: 2,1,\"5B57\",\"195071B\",9\r\n\r\n+CIPACK: 3, 3, 0\r\n",
	"\x00\xff\r\r\r\n\n>\x20>\x20\xfe",
	strings.Repeat("A", maxLine+10) + "\r\nOK\r\n",
}

// FuzzFramer checks that hostile bytes never panic the framer, that its
// events respect their bounds, and that how the bytes are cut into reads
// never changes what it finds.
func FuzzFramer(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, input []byte, piece uint8) {
		whole, fw := collect(input, 0)
		cut, fc := collect(input, int(piece))
		if !reflect.DeepEqual(normalise(whole), normalise(cut)) {
			t.Fatalf("events depend on read size %d:\n whole %s\n cut   %s", piece, describe(whole), describe(cut))
		}
		if fw.garbage != fc.garbage {
			t.Fatalf("garbage %d vs %d", fw.garbage, fc.garbage)
		}
		consumed := fw.garbage
		for i, ev := range whole {
			switch ev.kind {
			case evLine:
				if len(ev.line) == 0 || len(ev.line) > maxLine || strings.ContainsAny(ev.line, "\r\n") {
					t.Fatalf("bad line %q", ev.line)
				}
				consumed += int64(len(ev.line))
			case evData:
				got, ok := 0, false
				if i > 0 && whole[i-1].kind == evLine {
					got, ok = payloadHeader(whole[i-1].line)
				}
				if !ok || got != len(ev.data) || got > maxReceiveChunk {
					t.Fatalf("payload of %d bytes without a matching header", len(ev.data))
				}
				consumed += int64(len(ev.data))
			case evPrompt:
				consumed += 2
			}
		}
		if consumed > int64(len(input)) {
			t.Fatalf("events account for %d bytes of %d", consumed, len(input))
		}
	})
}

// FuzzModemAnswers answers every command of a whole window with the same
// hostile bytes. Whatever they are, no call may panic or outlive its
// deadline.
func FuzzModemAnswers(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		fake := startFake(t, func(fm *fakeModem) error {
			for {
				cmd, err := fm.io.readCommand()
				if err != nil {
					return nil
				}
				fm.record(cmd)
				if err := fm.io.send(string(answer)); err != nil {
					return nil
				}
			}
		})
		m := New(fake.port, Options{QuickSend: true, PollInterval: time.Millisecond})
		defer m.Close()
		const budget = 20 * time.Millisecond
		call := func(name string, fn func(ctx context.Context)) {
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			start := time.Now()
			fn(ctx)
			if d := time.Since(start); d > budget+2*time.Second {
				t.Fatalf("%s took %v with a %v budget", name, d, budget)
			}
		}
		call("Exec", func(ctx context.Context) { _, _ = m.Exec(ctx, "AT+CSQ", budget) })
		call("SIMStatus", func(ctx context.Context) { _, _ = m.SIMStatus(ctx) })
		call("SignalQuality", func(ctx context.Context) { _, _, _ = m.SignalQuality(ctx) })
		call("WaitRegistered", func(ctx context.Context) { _, _ = m.WaitRegistered(ctx, budget) })
		var c *Conn
		call("Dial", func(ctx context.Context) { c, _ = m.Dial(ctx, "127.0.0.1", 1883) })
		if c == nil {
			return
		}
		call("Write", func(context.Context) {
			_ = c.SetDeadline(time.Now().Add(budget))
			_, _ = c.Write(bytes.Repeat([]byte{0x1a}, 3000))
		})
		call("Read", func(context.Context) {
			_ = c.SetDeadline(time.Now().Add(budget))
			_, _ = c.Read(make([]byte, 100))
		})
		call("Acked", func(ctx context.Context) { _, _, _, _ = c.Acked(ctx) })
		call("Close", func(ctx context.Context) { _ = c.CloseContext(ctx) })
	})
}
