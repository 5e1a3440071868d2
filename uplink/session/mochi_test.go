package session_test

import (
	"bytes"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	testUser     = "sensor"
	testPassword = "s3cret"
)

// received is one PUBLISH as the broker saw it, aliases resolved.
type received struct {
	Topic   string
	Payload []byte
	QoS     byte
	Seq     string // MQTT 5 user property "seq"
	Expiry  uint32
}

// mochiBroker is a real MQTT broker on 127.0.0.1 that authenticates with
// testUser/testPassword and records every PUBLISH it accepts.
type mochiBroker struct {
	srv  *mqtt.Server
	addr string
	hook *recordHook
}

func startMochi(t testing.TB, caps func(*mqtt.Capabilities)) *mochiBroker {
	t.Helper()
	opts := &mqtt.Options{
		Logger:       slog.New(slog.DiscardHandler),
		Capabilities: mqtt.NewDefaultServerCapabilities(),
	}
	if caps != nil {
		caps(opts.Capabilities)
	}
	srv := mqtt.New(opts)
	hook := &recordHook{aliasMax: 16}
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatalf("add hook: %v", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "test", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatalf("add listener: %v", err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		// The tests' connections are closed by now (cleanups run last in,
		// first out). mochi races with itself when Close overlaps a
		// connection it is still setting up, so let those finish first.
		idle := make(chan struct{})
		go func() {
			srv.Listeners.ClientsWg.Wait()
			close(idle)
		}()
		select {
		case <-idle:
		case <-time.After(5 * time.Second):
			t.Errorf("mochi still serving clients")
		}
		_ = srv.Close()
	})
	return &mochiBroker{srv: srv, addr: tcp.Address(), hook: hook}
}

func (b *mochiBroker) dial(t testing.TB) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// recordHook checks credentials, allows every topic and records publishes.
// closeAfter, when positive, makes the broker drop the client's connection
// when that many PUBLISH packets have arrived.
type recordHook struct {
	mqtt.HookBase
	mu         sync.Mutex
	got        []received
	closeAfter int
	// aliasMax is announced as Topic Alias Maximum in MQTT 5 CONNACKs.
	// mochi accepts aliases up to its capability but never announces it,
	// so a client following the spec would never use them.
	aliasMax uint16
	// denyTopic is refused by the ACL: MQTT 5 clients get PUBACK/PUBREC
	// "not authorized" for it.
	denyTopic string
}

func (h *recordHook) ID() string { return "record" }

func (h *recordHook) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPacketEncode}, b)
}

func (h *recordHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return string(pk.Connect.Username) == testUser && string(pk.Connect.Password) == testPassword
}

func (h *recordHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 && cl.Properties.ProtocolVersion == 5 {
		pk.Properties.TopicAliasMaximum = h.aliasMax
	}
	return pk
}

func (h *recordHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.denyTopic == "" || topic != h.denyTopic
}

func (h *recordHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	r := received{
		Topic:   pk.TopicName,
		Payload: slices.Clone(pk.Payload),
		QoS:     pk.FixedHeader.Qos,
		Expiry:  pk.Properties.MessageExpiryInterval,
	}
	for _, u := range pk.Properties.User {
		if u.Key == "seq" {
			r.Seq = u.Val
		}
	}
	h.mu.Lock()
	h.got = append(h.got, r)
	closeNow := h.closeAfter > 0 && len(h.got) == h.closeAfter
	h.mu.Unlock()
	if closeNow {
		cl.Stop(packets.ErrServerShuttingDown)
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

func (h *recordHook) setCloseAfter(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeAfter = n
}

func (h *recordHook) received() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// seqOfPayload extracts i from the {"i":N,...} payloads makeRecords writes.
func seqOfPayload(p []byte) uint64 {
	rest, ok := bytes.CutPrefix(p, []byte(`{"i":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n
}
