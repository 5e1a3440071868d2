package session_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/session"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// inboxStore is a memStore with an in-memory Inbox following the
// contract: redeliveries recognised by packet id and content, QoS 2 ids
// held until released, a byte bound.
type inboxStore struct {
	*memStore
	mu       sync.Mutex
	msgs     []session.Inbound
	bytes    int
	maxBytes int
	last     map[uint16]string // packet id -> topic+payload of the last message stored under it
	rel      map[uint16]bool
	storeErr error
	onStore  func(session.Inbound)
}

func newInboxStore(recs []session.Record) *inboxStore {
	return &inboxStore{memStore: newMemStore(recs), last: map[uint16]string{}, rel: map[uint16]bool{}}
}

func (s *inboxStore) StoreInbound(m session.Inbound) (session.InboundOutcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onStore != nil {
		s.onStore(m)
	}
	if s.storeErr != nil {
		return 0, s.storeErr
	}
	key := m.Topic + "\x00" + string(m.Payload)
	if (m.QoS == 2 && s.rel[m.PacketID]) || (m.Dup && s.last[m.PacketID] == key) {
		return session.InboundDuplicate, nil
	}
	size := len(m.Topic) + len(m.Payload)
	if s.maxBytes > 0 && s.bytes+size > s.maxBytes {
		return session.InboundFull, nil
	}
	s.msgs = append(s.msgs, m)
	s.bytes += size
	s.last[m.PacketID] = key
	if m.QoS == 2 {
		s.rel[m.PacketID] = true
	}
	return session.InboundStored, nil
}

func (s *inboxStore) ReleaseInbound(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rel, id)
	return nil
}

func (s *inboxStore) inbox() []session.Inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]session.Inbound(nil), s.msgs...)
}

func startBroker(t *testing.T) *brokertest.Broker {
	t.Helper()
	b, err := brokertest.Start(brokertest.Options{Username: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func dialAddr(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func downlinkConfig(v codec.Version, subs ...codec.Subscription) session.Config {
	cfg := testConfig(v)
	cfg.CleanStart = false
	cfg.Downlink = session.DownlinkConfig{Subscriptions: subs, Wait: 20 * time.Second, SessionExpiry: 3600, ReceiveMaximum: 16}
	return cfg
}

// Ensure messages published while the site was offline (QoS 1 and 2) arrive
// in the next session through a real broker, each stored once, and that a
// session whose broker kept the subscriptions does not subscribe again.
func TestDownlinkCollectsMessagesPublishedWhileOffline(t *testing.T) {
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		t.Run(v.String(), func(t *testing.T) {
			b := startBroker(t)
			sub := codec.Subscription{Filter: "cmd/board-1/#", QoS: 2}
			first := newInboxStore([]session.Record{{Seq: 1, Topic: "site/1/t", Payload: []byte("1"), QoS: 1}})
			firstCfg := downlinkConfig(v, sub)
			firstCfg.Downlink.LastPacketID = 65534 // identifiers continue from the last session's, wrapping
			res, err := session.Run(runCtx(t), dialAddr(t, b.Addr()), first, firstCfg)
			if err != nil || !res.Downlink.Subscribed || res.Acked != 1 {
				t.Fatalf("first session: %+v, %v", res.Downlink, err)
			}
			if res.Downlink.LastPacketID != 1 {
				t.Errorf("last packet id %d after 65534 and two packets, want 1", res.Downlink.LastPacketID)
			}
			want := []struct {
				topic, payload string
				qos            byte
			}{{"cmd/board-1/config", `{"interval":300}`, 1}, {"cmd/board-1/reboot", "now", 2}, {"cmd/board-1/note", "hello", 1}}
			for _, m := range want {
				if err := b.Publish(m.topic, []byte(m.payload), m.qos, false); err != nil {
					t.Fatal(err)
				}
			}
			second := newInboxStore(nil)
			cfg := downlinkConfig(v, sub)
			res, err = session.Run(runCtx(t), dialAddr(t, b.Addr()), second, cfg)
			if err != nil {
				t.Fatalf("second session: %v", err)
			}
			if !res.Connack.SessionPresent || res.Downlink.Granted != nil {
				t.Errorf("second session: session present %v, granted %v; want a kept session, no SUBSCRIBE", res.Connack.SessionPresent, res.Downlink.Granted)
			}
			got := second.inbox()
			if len(got) != len(want) || res.Downlink.Messages != len(want) {
				t.Fatalf("inbox holds %d messages (%d counted), want %d: %+v", len(got), res.Downlink.Messages, len(want), got)
			}
			// mochi resends a stored session's messages in no particular order.
			have := map[string]bool{}
			for _, g := range got {
				have[fmt.Sprintf("%s %s %d", g.Topic, g.Payload, g.QoS)] = true
			}
			for _, m := range want {
				if !have[fmt.Sprintf("%s %s %d", m.topic, m.payload, m.qos)] {
					t.Errorf("inbox lacks %q %q QoS %d: %+v", m.topic, m.payload, m.qos, got)
				}
			}
			// Nothing is delivered twice: the third session finds nothing.
			third := newInboxStore(nil)
			if res, err = session.Run(runCtx(t), dialAddr(t, b.Addr()), third, cfg); err != nil || len(third.inbox()) != 0 {
				t.Fatalf("third session: %d messages, %v", len(third.inbox()), err)
			}
		})
	}
}

// fakeDownlinkBroker accepts one connection, answers CONNECT with a CONNACK
// (session present) and then runs script on the connection.
// The returned channel is closed when the script has returned.
func fakeDownlinkBroker(t *testing.T, v codec.Version, script func(w net.Conn, dec *codec.Decoder)) (string, <-chan struct{}) {
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
		dec := codec.NewDecoder(bufio.NewReader(conn), v, 1<<20)
		if p, err := dec.Next(); err != nil || p.Type != codec.TypeConnect {
			t.Errorf("fake broker: want CONNECT, got %v", err)
			return
		}
		ack, _ := codec.AppendConnack(nil, v, &codec.Connack{SessionPresent: true})
		if _, err := conn.Write(ack); err != nil {
			return
		}
		script(conn, dec)
	}()
	t.Cleanup(func() { <-done })
	return ln.Addr().String(), done
}

func publishPacket(t *testing.T, v codec.Version, p codec.Publish) []byte {
	t.Helper()
	b, err := codec.AppendPublish(nil, v, &p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readUntil reads packets until one of type typ (returned) or an error,
// answering PINGREQs on w.
func readUntil(w net.Conn, dec *codec.Decoder, typ codec.PacketType) (*codec.Packet, error) {
	for {
		p, err := dec.Next()
		if err != nil {
			return nil, err
		}
		if p.Type == typ {
			return p, nil
		}
		if p.Type == codec.TypePingreq {
			if _, err := w.Write(codec.AppendPingresp(nil)); err != nil {
				return nil, err
			}
		}
	}
}

// Ensure a message is acknowledged only after it was stored: a store that
// fails leaves it unacknowledged, and the broker's redelivery (DUP) of a
// stored message is recognised and acknowledged again without a second
// copy. QoS 2 completes PUBREC/PUBREL/PUBCOMP.
func TestDownlinkAcknowledgesOnlyStoredMessages(t *testing.T) {
	v := codec.V311
	msg := codec.Publish{Topic: "cmd/x", Payload: []byte("set"), QoS: 1, PacketID: 7}
	failing := newInboxStore(nil)
	failing.storeErr = errors.New("disk gone")
	acked := make(chan codec.PacketType, 4)
	addr, done := fakeDownlinkBroker(t, v, func(w net.Conn, dec *codec.Decoder) {
		_, _ = w.Write(publishPacket(t, v, msg))
		// The session fails on the store error and sends no PUBACK.
		for {
			p, err := dec.Next()
			if err != nil {
				return
			}
			acked <- p.Type
		}
	})
	cfg := downlinkConfig(v, codec.Subscription{Filter: "cmd/#", QoS: 1})
	conn := dialAddr(t, addr)
	_, err := session.Run(runCtx(t), conn, failing, cfg)
	_ = conn.Close()
	if err == nil || !errors.Is(err, failing.storeErr) {
		t.Fatalf("session with a failing inbox: %v", err)
	}
	<-done
	close(acked)
	for typ := range acked {
		if typ == codec.TypePuback {
			t.Fatalf("PUBACK sent for a message that was not stored")
		}
	}

	store := newInboxStore(nil)
	var got []string
	addr, done = fakeDownlinkBroker(t, v, func(w net.Conn, dec *codec.Decoder) {
		dup := msg
		dup.Dup = true
		q2 := codec.Publish{Topic: "cmd/y", Payload: []byte("two"), QoS: 2, PacketID: 8}
		for _, p := range []codec.Publish{msg, dup, q2} {
			_, _ = w.Write(publishPacket(t, v, p))
		}
		for len(got) < 3 {
			p, err := dec.Next()
			if err != nil {
				return
			}
			switch p.Type {
			case codec.TypePuback, codec.TypePubrec:
				got = append(got, fmt.Sprintf("%s %d", p.Type, p.Ack.PacketID))
			case codec.TypePingreq:
				_, _ = w.Write(codec.AppendPingresp(nil))
			}
		}
		rel, _ := codec.AppendAck(nil, v, codec.TypePubrel, 8, 0)
		_, _ = w.Write(rel)
		if p, err := readUntil(w, dec, codec.TypePubcomp); err == nil {
			got = append(got, fmt.Sprintf("%s %d", p.Type, p.Ack.PacketID))
		}
		for {
			p, err := dec.Next()
			if err != nil || p.Type == codec.TypeDisconnect {
				return
			}
			if p.Type == codec.TypePingreq {
				_, _ = w.Write(codec.AppendPingresp(nil))
			}
		}
	})
	res, err := session.Run(runCtx(t), dialAddr(t, addr), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if n := len(store.inbox()); n != 2 || res.Downlink.Messages != 2 || res.Downlink.Duplicates != 1 {
		t.Fatalf("inbox %d messages, result %+v; want 2 stored, 1 duplicate", n, res.Downlink)
	}
	want := []string{"PUBACK 7", "PUBACK 7", "PUBREC 8", "PUBCOMP 8"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("acknowledgements %v, want %v", got, want)
	}
	if len(store.rel) != 0 {
		t.Fatalf("QoS 2 state left after PUBREL: %v", store.rel)
	}
}

// Ensure a hostile broker that floods the downlink cannot exhaust the
// inbox bound or hold the session open: once the inbox is full, nothing
// more is stored or acknowledged and the session ends.
func TestDownlinkFloodIsBounded(t *testing.T) {
	v := codec.V5
	store := newInboxStore(nil)
	store.maxBytes = 10 << 10
	stop := make(chan struct{})
	addr, _ := fakeDownlinkBroker(t, v, func(w net.Conn, dec *codec.Decoder) {
		go func() {
			for {
				if _, err := dec.Next(); err != nil {
					return
				}
			}
		}()
		payload := make([]byte, 1000)
		for id := uint16(1); ; id++ {
			if id == 0 {
				id = 1
			}
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Write(publishPacket(t, v, codec.Publish{Topic: "cmd/flood", Payload: payload, QoS: 1, PacketID: id})); err != nil {
				return
			}
		}
	})
	cfg := downlinkConfig(v, codec.Subscription{Filter: "cmd/#", QoS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := dialAddr(t, addr)
	res, _ := session.Run(ctx, conn, store, cfg)
	_ = conn.Close()
	close(stop)
	if store.bytes > store.maxBytes {
		t.Fatalf("inbox holds %d bytes, bound %d", store.bytes, store.maxBytes)
	}
	if res.Downlink.Messages != len(store.inbox()) || res.Downlink.Messages == 0 || res.Downlink.Refused == 0 {
		t.Fatalf("downlink %+v, inbox %d", res.Downlink, len(store.inbox()))
	}
	if ctx.Err() != nil {
		t.Fatalf("the flood held the session until the test's deadline")
	}
}
