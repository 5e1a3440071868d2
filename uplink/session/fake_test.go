package session_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// readRaw reads one whole MQTT packet without interpreting it, so the fake
// broker can check its size and parse it with an independent decoder (paho).
func readRaw(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	raw := []byte{first}
	remaining, shift := 0, 0
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
		remaining |= int(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return nil, errors.New("remaining length longer than 4 bytes")
		}
	}
	body := make([]byte, remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(raw, body...), nil
}

// strictBroker is a fake MQTT 5 broker on 127.0.0.1 that announces the
// limits in its CONNACK, answers like a broker and records every violation
// of those limits by the client. It serves one connection. With version set
// to 3 or 4 it only records the stream and answers (see serveV3).
type strictBroker struct {
	addr         string
	version      codec.Version
	connack      codec.Connack
	ackDelay     time.Duration // before each PUBACK/PUBREC/PUBCOMP
	connackDelay time.Duration
	dropAcks     bool          // never acknowledge a PUBLISH
	afterConnack []byte        // written right behind CONNACK
	spamEvery    time.Duration // push a QoS 1 PUBLISH to the client this often
	// A PUBLISH to failTopic ends the connection: with a DISCONNECT
	// carrying failReason when that is not 0, else by closing it. A
	// PUBLISH to refuseTopic is answered with refuseReason.
	failTopic    string
	failReason   byte
	refuseTopic  string
	refuseReason byte

	mu             sync.Mutex
	got            []received
	violations     []string
	inflight       int
	maxInflight    int
	aliasedOnly    int // PUBLISH packets that carried an alias and no topic
	sizes          []int
	stream         []byte   // every byte the client sent, in order
	clientAcks     []string // acknowledgements the client sent, e.g. "PUBACK 7"
	pingreqs       int
	connackSent    bool
	bytesBeforeAck int // bytes after CONNECT read before CONNACK was written
	qos1BeforeAck  int
	done           chan struct{}
}

type outPacket struct {
	b      []byte
	delay  time.Duration
	before func() // runs just before the write
}

func startStrict(t *testing.T, connack codec.Connack, configure func(*strictBroker)) *strictBroker {
	t.Helper()
	ln := testkit.Listen(t)
	b := &strictBroker{addr: ln.Addr().String(), connack: connack, done: make(chan struct{})}
	if configure != nil {
		configure(b)
	}
	go b.serve(ln)
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			t.Errorf("fake broker did not stop")
		}
	})
	return b
}

func (b *strictBroker) violate(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf(format, args...))
}

func (b *strictBroker) serve(ln net.Listener) {
	defer close(b.done)
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	out := make(chan outPacket, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for p := range out {
			time.Sleep(p.delay) // a slow broker, as the test configured
			if p.before != nil {
				p.before()
			}
			if _, err := conn.Write(p.b); err != nil {
				return
			}
		}
	}()
	defer func() { close(out); <-writerDone }()
	stopSpam := make(chan struct{})
	spamDone := make(chan struct{})
	defer func() { close(stopSpam); <-spamDone }()
	go b.spam(out, stopSpam, spamDone)

	r := bufio.NewReader(conn)
	if b.version == codec.V31 || b.version == codec.V311 {
		b.serveV3(r, out)
		return
	}
	aliases := map[uint16]string{}
	qos2 := map[uint16]bool{}
	for first := true; ; first = false {
		raw, err := readRaw(r)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.stream = append(b.stream, raw...)
		b.mu.Unlock()
		if bytes.Equal(raw, []byte{0xe0, 0x00}) {
			// MQTT 5 DISCONNECT with reason and properties omitted, which
			// paho's decoder does not accept.
			return
		}
		cp, err := packets.ReadPacket(bytes.NewReader(raw))
		if err != nil {
			b.violate("undecodable packet % x: %v", raw, err)
			return
		}
		b.mu.Lock()
		b.sizes = append(b.sizes, len(raw))
		preConnack := !b.connackSent
		if preConnack && !first {
			b.bytesBeforeAck += len(raw)
		}
		b.mu.Unlock()
		if max := b.connack.MaximumPacketSize; max > 0 && len(raw) > int(max) {
			b.violate("packet of %d bytes exceeds Maximum Packet Size %d", len(raw), max)
		}
		if first {
			c, ok := cp.Content.(*packets.Connect)
			if !ok || c.ProtocolVersion != 5 {
				b.violate("first packet %v is not an MQTT 5 CONNECT", cp)
				return
			}
			ack, err := codec.AppendConnack(nil, codec.V5, &b.connack)
			if err != nil {
				b.violate("encode CONNACK: %v", err)
				return
			}
			out <- outPacket{b: ack, delay: b.connackDelay, before: func() {
				b.mu.Lock()
				b.connackSent = true
				b.mu.Unlock()
			}}
			if b.afterConnack != nil {
				out <- outPacket{b: b.afterConnack}
			}
			continue
		}
		switch p := cp.Content.(type) {
		case *packets.Publish:
			if !b.onPublish(p, preConnack, aliases, qos2, out) {
				return
			}
		case *packets.Pubrel:
			if !qos2[p.PacketID] {
				b.violate("PUBREL for unknown packet id %d", p.PacketID)
			}
			delete(qos2, p.PacketID)
			ack, _ := codec.AppendAck(nil, codec.V5, codec.TypePubcomp, p.PacketID, 0)
			out <- outPacket{b: ack, delay: b.ackDelay, before: b.release}
		case *packets.Puback:
			b.clientAck("PUBACK", p.PacketID)
		case *packets.Pubrec:
			b.clientAck("PUBREC", p.PacketID)
			rel, _ := codec.AppendAck(nil, codec.V5, codec.TypePubrel, p.PacketID, 0)
			out <- outPacket{b: rel}
		case *packets.Pubcomp:
			b.clientAck("PUBCOMP", p.PacketID)
		case *packets.Pingreq:
			b.mu.Lock()
			b.pingreqs++
			b.mu.Unlock()
			out <- outPacket{b: codec.AppendPingresp(nil)}
		case *packets.Disconnect:
			return
		default:
			b.violate("unexpected packet %v", cp)
		}
	}
}

// spam pushes a QoS 1 PUBLISH to the client every spamEvery until stop.
func (b *strictBroker) spam(out chan<- outPacket, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if b.spamEvery <= 0 {
		return
	}
	tick := time.NewTicker(b.spamEvery)
	defer tick.Stop()
	for id := uint16(1000); ; id++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		b.mu.Lock()
		connected := b.connackSent
		b.mu.Unlock()
		if !connected {
			continue
		}
		p, _ := codec.AppendPublish(nil, codec.V5, &codec.Publish{Topic: "cmd/x", Payload: []byte("hi"), QoS: 1, PacketID: id})
		out <- outPacket{b: p}
	}
}

func (b *strictBroker) clientAck(kind string, id uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clientAcks = append(b.clientAcks, fmt.Sprintf("%s %d", kind, id))
}

func (b *strictBroker) release() {
	b.mu.Lock()
	b.inflight--
	b.mu.Unlock()
}

// onPublish handles one PUBLISH; false ends the connection.
func (b *strictBroker) onPublish(p *packets.Publish, preConnack bool, aliases map[uint16]string, qos2 map[uint16]bool, out chan<- outPacket) bool {
	c := b.connack
	if c.HasMaximumQoS && p.QoS > c.MaximumQoS {
		b.violate("PUBLISH QoS %d above Maximum QoS %d", p.QoS, c.MaximumQoS)
	}
	if p.Retain && !c.RetainAvailable {
		b.violate("retained PUBLISH though Retain Available is 0")
	}
	topic := p.Topic
	if a := p.Properties.TopicAlias; a != nil {
		switch {
		case *a == 0 || *a > c.TopicAliasMaximum:
			b.violate("topic alias %d outside 1..%d", *a, c.TopicAliasMaximum)
		case topic != "":
			aliases[*a] = topic
		default:
			known, ok := aliases[*a]
			if !ok {
				b.violate("topic alias %d used before it was set", *a)
			}
			topic = known
			b.mu.Lock()
			b.aliasedOnly++
			b.mu.Unlock()
		}
	} else if topic == "" {
		b.violate("PUBLISH with neither topic nor alias")
	}
	if b.failTopic != "" && topic == b.failTopic {
		if b.failReason != 0 {
			d, _ := codec.AppendDisconnect(nil, codec.V5, &codec.Disconnect{ReasonCode: b.failReason})
			out <- outPacket{b: d}
		}
		return false
	}
	if b.refuseTopic != "" && topic == b.refuseTopic && p.QoS > 0 {
		t := codec.TypePuback
		if p.QoS == 2 {
			t = codec.TypePubrec
		}
		ack, _ := codec.AppendAck(nil, codec.V5, t, p.PacketID, b.refuseReason)
		out <- outPacket{b: ack, delay: b.ackDelay}
		return true
	}
	r := received{Topic: topic, Payload: slices.Clone(p.Payload), QoS: p.QoS}
	for _, u := range p.Properties.User {
		if u.Key == "seq" {
			r.Seq = u.Value
		}
	}
	if e := p.Properties.MessageExpiry; e != nil {
		r.Expiry = *e
	}
	b.mu.Lock()
	b.got = append(b.got, r)
	if p.QoS > 0 {
		b.inflight++
		b.maxInflight = max(b.maxInflight, b.inflight)
		if preConnack {
			b.qos1BeforeAck++
		}
	}
	over := p.QoS > 0 && c.ReceiveMaximum > 0 && b.inflight > int(c.ReceiveMaximum)
	inflight := b.inflight
	b.mu.Unlock()
	if over {
		b.violate("%d QoS>0 PUBLISH in flight, Receive Maximum %d", inflight, c.ReceiveMaximum)
	}
	if b.dropAcks {
		return true
	}
	switch p.QoS {
	case 1:
		ack, _ := codec.AppendAck(nil, codec.V5, codec.TypePuback, p.PacketID, 0)
		out <- outPacket{b: ack, delay: b.ackDelay, before: b.release}
	case 2:
		qos2[p.PacketID] = true
		ack, _ := codec.AppendAck(nil, codec.V5, codec.TypePubrec, p.PacketID, 0)
		out <- outPacket{b: ack, delay: b.ackDelay}
	}
	return true
}

// wait blocks until the broker has finished with its connection.
func (b *strictBroker) wait(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("fake broker still serving")
	}
}

func (b *strictBroker) checkNoViolations(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, v := range b.violations {
		t.Errorf("client broke a broker limit: %s", v)
	}
}

func (b *strictBroker) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

// serveV3 answers an MQTT 3.1/3.1.1 client: CONNACK, PUBACK, PUBREC and
// PUBCOMP, PINGRESP. paho's decoder only speaks MQTT 5, so this side parses
// with package codec; it exists to record the client's byte stream.
func (b *strictBroker) serveV3(r *bufio.Reader, out chan<- outPacket) {
	for {
		raw, err := readRaw(r)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.stream = append(b.stream, raw...)
		b.mu.Unlock()
		p, err := codec.NewDecoder(bytes.NewReader(raw), b.version, 0).Next()
		if err != nil {
			b.violate("undecodable packet % x: %v", raw, err)
			return
		}
		var reply []byte
		switch p.Type {
		case codec.TypeConnect:
			reply = []byte{0x20, 0x02, 0x00, 0x00}
		case codec.TypePublish:
			switch p.Publish.QoS {
			case 1:
				reply, _ = codec.AppendAck(nil, b.version, codec.TypePuback, p.Publish.PacketID, 0)
			case 2:
				reply, _ = codec.AppendAck(nil, b.version, codec.TypePubrec, p.Publish.PacketID, 0)
			}
		case codec.TypePubrel:
			reply, _ = codec.AppendAck(nil, b.version, codec.TypePubcomp, p.Ack.PacketID, 0)
		case codec.TypePingreq:
			reply = codec.AppendPingresp(nil)
		case codec.TypeDisconnect:
			return
		default:
			b.violate("unexpected packet %s", p.Type)
		}
		if reply != nil {
			out <- outPacket{b: reply}
		}
	}
}
