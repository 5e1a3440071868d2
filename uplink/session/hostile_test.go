package session_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/session"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// startScripted serves one connection on 127.0.0.1: it reads the client's
// CONNECT, writes reply, then either closes the connection or keeps reading
// (and discarding) until the client goes away.
func startScripted(t *testing.T, reply []byte, closeAfter bool) string {
	t.Helper()
	ln := testkit.Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		if _, err := readRaw(r); err != nil {
			return
		}
		if _, err := conn.Write(reply); err != nil || closeAfter {
			return
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustBytes(t *testing.T) func(b []byte, err error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// Ensure hostile or broken broker bytes end the session with a clean,
// classified error, quickly, and delete nothing.
func TestRunHostileBroker(t *testing.T) {
	must := mustBytes(t)
	connack3 := []byte{0x20, 0x02, 0x00, 0x00}
	connack5 := []byte{0x20, 0x03, 0x00, 0x00, 0x00}
	tests := []struct {
		name     string
		v        codec.Version
		reply    []byte
		close    bool
		wantErr  error
		wantStep string // "" = any step
		wantText string
	}{
		{"garbage", codec.V311, []byte{0xff, 0xff, 0xff, 0xff, 0xff}, false, session.ErrProtocol, session.StepConnect, "variable byte integer"},
		{"oversize packet", codec.V311, cat(connack3, []byte{0x30, 0xff, 0xff, 0xff, 0x7f}), false, session.ErrProtocol, "", "packet too large"},
		{"unexpected SUBACK", codec.V311, cat(connack3, []byte{0x90, 0x03, 0x00, 0x01, 0x00}), false, session.ErrProtocol, "", "unexpected SUBACK"},
		{"unexpected PINGREQ", codec.V311, cat(connack3, []byte{0xc0, 0x00}), false, session.ErrProtocol, "", "unexpected PINGREQ"},
		{"unexpected CONNECT", codec.V311, cat(connack3, must(codec.AppendConnect(nil, &codec.Connect{Version: codec.V311, ClientID: "x"}))), false, session.ErrProtocol, "", "unexpected CONNECT"},
		{"ack for unknown id", codec.V311, cat(connack3, []byte{0x40, 0x02, 0x03, 0xe7}), false, session.ErrProtocol, "", "packet id 999"},
		{"PUBCOMP without PUBREC", codec.V311, cat(connack3, []byte{0x70, 0x02, 0x00, 0x01}), false, session.ErrProtocol, "", "PUBCOMP"},
		{"second CONNACK", codec.V311, cat(connack3, connack3), false, session.ErrProtocol, "", "second CONNACK"},
		{"PUBACK before CONNACK", codec.V311, []byte{0x40, 0x02, 0x00, 0x01}, false, session.ErrProtocol, session.StepConnect, "before CONNACK"},
		{"malformed CONNACK", codec.V311, []byte{0x20, 0x03, 0x00, 0x00, 0x00}, false, session.ErrProtocol, session.StepConnect, "CONNACK"},
		{"closed before CONNACK", codec.V311, nil, true, session.ErrBrokerDisconnect, session.StepConnect, "connection closed"},
		{"closed after CONNACK", codec.V311, connack3, true, session.ErrBrokerDisconnect, "", ""},
		{"closed inside a packet", codec.V311, cat(connack3, []byte{0x40, 0x02, 0x00}), true, session.ErrBrokerDisconnect, "", ""},
		{"silent before CONNACK", codec.V311, nil, false, session.ErrReplyTimeout, session.StepConnect, "CONNACK"},
		{"silent after CONNACK", codec.V311, connack3, false, session.ErrReplyTimeout, "", "acknowledgements"},
		{"refused identifier", codec.V311, []byte{0x20, 0x02, 0x00, 0x02}, false, codec.ErrConnectionRefused, session.StepConnect, "broker refused connection: identifier rejected"},
		{"refused v5", codec.V5, must(codec.AppendConnack(nil, codec.V5, &codec.Connack{ReasonCode: 0x87, RetainAvailable: true})), false, codec.ErrConnectionRefused, session.StepConnect, "broker refused connection: not authorized"},
		{"v5 DISCONNECT", codec.V5, cat(connack5, must(codec.AppendDisconnect(nil, codec.V5, &codec.Disconnect{ReasonCode: 0x97, ReasonString: "daily quota"}))), false, session.ErrBrokerDisconnect, "", `quota exceeded) "daily quota"`},
		{"v5 DISCONNECT before CONNACK", codec.V5, must(codec.AppendDisconnect(nil, codec.V5, &codec.Disconnect{ReasonCode: 0x89})), false, session.ErrBrokerDisconnect, session.StepConnect, "server busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startScripted(t, tt.reply, tt.close)
			recs := makeRecords(20, 1)
			store := newMemStore(recs)
			cfg := testConfig(tt.v)
			cfg.ReplyTimeout = 300 * time.Millisecond
			start := time.Now()

			res, err := session.Run(runCtx(t), dialFake(t, addr), store, cfg)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Run took %s", elapsed)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run error = %v, want %v", err, tt.wantErr)
			}
			var se *fault.StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *fault.StepError", err)
			}
			if tt.wantStep != "" && se.Step != tt.wantStep {
				t.Errorf("step = %q, want %q", se.Step, tt.wantStep)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not mention %q", err, tt.wantText)
			}
			if res.Acked != 0 || len(store.remaining()) != len(recs) {
				t.Errorf("records deleted without proof: Acked=%d, %d left", res.Acked, len(store.remaining()))
			}
		})
	}
}

// Ensure a broker that keeps talking (pushing its own messages, answering
// keep-alives) but never acknowledges the client's PUBLISH still ends the
// session at ReplyTimeout.
func TestRunChattyBrokerStillTimesOut(t *testing.T) {
	broker := startStrict(t, codec.Connack{RetainAvailable: true}, func(b *strictBroker) {
		b.dropAcks = true
		b.spamEvery = 30 * time.Millisecond
	})
	cfg := testConfig(codec.V5)
	cfg.ReplyTimeout = 400 * time.Millisecond
	store := newMemStore(makeRecords(5, 1))
	conn := dialFake(t, broker.addr)
	start := time.Now()
	_, err := session.Run(runCtx(t), conn, store, cfg)
	if !errors.Is(err, session.ErrReplyTimeout) {
		t.Fatalf("Run error = %v, want ErrReplyTimeout", err)
	}
	// Chatter that reset the reply timer would run to runCtx's 30 s.
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("Run took %s with a 400 ms ReplyTimeout", elapsed)
	}
	_ = conn.Close()
	broker.wait(t)
	broker.mu.Lock()
	defer broker.mu.Unlock()
	if len(broker.clientAcks) == 0 {
		t.Errorf("the broker's messages were not acknowledged; the test did not exercise chatter")
	}
}

// Ensure the context's deadline and cancellation end a session waiting on a
// silent broker, with the context's error.
func TestRunContextEndsSession(t *testing.T) {
	for _, tt := range []struct {
		name string
		want error
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", context.DeadlineExceeded, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 150*time.Millisecond)
		}},
		{"cancel", context.Canceled, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(150*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := startScripted(t, nil, false)
			ctx, cancel := tt.ctx()
			defer cancel()
			cfg := testConfig(codec.V311)
			cfg.ReplyTimeout = time.Minute
			start := time.Now()
			_, err := session.Run(ctx, dialFake(t, addr), newMemStore(makeRecords(5, 1)), cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run error = %v, want %v", err, tt.want)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Run took %s after the context ended", elapsed)
			}
		})
	}
}

// Ensure a write the peer never takes (a hung modem) ends at ReplyTimeout.
func TestRunWriteTimeout(t *testing.T) {
	client, peer := net.Pipe() // unbuffered: the write blocks until read
	defer peer.Close()
	defer client.Close()
	cfg := testConfig(codec.V311)
	cfg.ReplyTimeout = 200 * time.Millisecond
	_, err := session.Run(runCtx(t), client, newMemStore(makeRecords(5, 1)), cfg)
	var se *fault.StepError
	if !errors.Is(err, session.ErrReplyTimeout) || !errors.As(err, &se) || se.Step != session.StepConnect {
		t.Fatalf("Run error = %v, want ErrReplyTimeout in step %q", err, session.StepConnect)
	}
}

// Ensure store failures end the session naming the queue step.
func TestRunStoreErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	acked := codec.Connack{RetainAvailable: true}

	broker := startStrict(t, acked, nil)
	store := newMemStore(makeRecords(10, 1))
	store.readErr = boom
	_, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
	var se *fault.StepError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Step != session.StepQueueRead {
		t.Errorf("Read failure: error %v, want %q step wrapping %v", err, session.StepQueueRead, boom)
	}

	broker = startStrict(t, acked, nil)
	store = newMemStore(makeRecords(10, 1))
	store.ackErr = boom
	res, err := session.Run(runCtx(t), dialFake(t, broker.addr), store, testConfig(codec.V5))
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Step != session.StepQueueAck {
		t.Errorf("Ack failure: error %v, want %q step wrapping %v", err, session.StepQueueAck, boom)
	}
	if res.Acked != 0 {
		t.Errorf("Acked = %d though every Ack failed", res.Acked)
	}
}

// Ensure unusable arguments fail cleanly instead of panicking or hanging.
func TestRunInvalidInput(t *testing.T) {
	client, peer := net.Pipe()
	defer peer.Close()
	defer client.Close()
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	store := newMemStore(makeRecords(3, 1))

	if _, err := session.Run(runCtx(t), nil, store, testConfig(codec.V5)); err == nil {
		t.Errorf("Run with a nil connection succeeded")
	}
	if _, err := session.Run(runCtx(t), client, nil, testConfig(codec.V5)); err == nil {
		t.Errorf("Run with a nil store succeeded")
	}
	_, err := session.Run(runCtx(t), client, store, testConfig(codec.Version(9)))
	if !errors.Is(err, codec.ErrUnsupportedVersion) {
		t.Errorf("Run with protocol level 9: error %v, want codec.ErrUnsupportedVersion", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := session.Run(ctx, client, store, testConfig(codec.V5)); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: error %v, want context.Canceled", err)
	}
	if store.ackCalls != 0 {
		t.Errorf("store touched")
	}
}
