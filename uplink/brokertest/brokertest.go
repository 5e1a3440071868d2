// Package brokertest runs a real MQTT broker (mochi-mqtt) in-process on
// loopback, with optional password authentication and announced limits, and
// records every message it routes. Tests and `uploader demo` use it; it
// must not be imported by the code that runs on a board's windows.
package brokertest

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure the broker. Zero values mean mochi's defaults.
type Options struct {
	// Username and Password, when Username is set, are the only credentials
	// accepted; otherwise every client is allowed.
	Username string
	Password string
	Logger   *slog.Logger

	// Limits the broker announces in an MQTT 5 CONNACK.
	ReceiveMaximum    uint16
	TopicAliasMaximum uint16
	MaximumPacketSize uint32

	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config

	// DenyPublish lists topic filters no client may publish to, like an
	// ACL: an MQTT 5 QoS 1/2 PUBLISH to them is answered with reason 0x87
	// (not authorized), a QoS 0 one is dropped, and an MQTT 3.1.1 client is
	// disconnected (mochi's behaviour).
	DenyPublish []string
}

// Message is one PUBLISH the broker routed to its recording subscriber.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Seq     string // the "seq" user property (MQTT 5), "" otherwise
	// ContentType is the MQTT 5 Content Type, "" when absent.
	ContentType string
	At          time.Time
}

// Broker is a running broker.
type Broker struct {
	srv  *mqtt.Server
	addr string

	mu   sync.Mutex
	msgs []Message
}

// Start listens on 127.0.0.1 on a free port.
func Start(opts Options) (*Broker, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if opts.ReceiveMaximum > 0 {
		caps.ReceiveMaximum = opts.ReceiveMaximum
	}
	if opts.TopicAliasMaximum > 0 {
		caps.TopicAliasMaximum = opts.TopicAliasMaximum
	}
	if opts.MaximumPacketSize > 0 {
		caps.MaximumPacketSize = opts.MaximumPacketSize
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log, Capabilities: caps})
	var err error
	switch {
	case opts.Username != "" || len(opts.DenyPublish) > 0:
		rule := auth.AuthRule{Allow: true}
		if opts.Username != "" {
			rule.Username, rule.Password = auth.RString(opts.Username), auth.RString(opts.Password)
		}
		ledger := &auth.Ledger{Auth: auth.AuthRules{rule}}
		if len(opts.DenyPublish) > 0 {
			// A filter that grants only reading denies writing; every other
			// topic stays open (mochi's ledger allows what no rule matches).
			filters := auth.Filters{}
			for _, f := range opts.DenyPublish {
				filters[auth.RString(f)] = auth.ReadOnly
			}
			ledger.ACL = auth.ACLRules{{Filters: filters}}
		}
		err = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger})
	default:
		err = srv.AddHook(new(auth.AllowHook), nil)
	}
	if err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "brokertest", Address: "127.0.0.1:0", TLSConfig: opts.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on 127.0.0.1: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	aliasMax := caps.TopicAliasMaximum
	if err := srv.AddHook(&announceHook{topicAliasMaximum: aliasMax}, nil); err != nil {
		return nil, fmt.Errorf("broker: announce hook: %w", err)
	}
	b := &Broker{srv: srv, addr: tcp.Address()}
	err = srv.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if strings.HasPrefix(pk.TopicName, "$") {
			return // the broker's own $SYS reports
		}
		m := Message{
			Topic:   pk.TopicName,
			Payload: append([]byte(nil), pk.Payload...),
			QoS:     pk.FixedHeader.Qos,
			Retain:  pk.FixedHeader.Retain,
			At:      time.Now(),

			ContentType: pk.Properties.ContentType,
		}
		for _, up := range pk.Properties.User {
			if up.Key == "seq" {
				m.Seq = up.Val
			}
		}
		b.mu.Lock()
		b.msgs = append(b.msgs, m)
		b.mu.Unlock()
	})
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: subscribe: %w", err)
	}
	return b, nil
}

// Addr is host:port of the listener.
func (b *Broker) Addr() string { return b.addr }

// Messages returns a copy of what was routed so far.
func (b *Broker) Messages() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

// Count is the number of messages routed so far.
func (b *Broker) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// WaitCount waits until at least n messages were routed, or timeout.
// Routing to the recording subscriber is asynchronous to the PUBACK.
func (b *Broker) WaitCount(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if b.Count() >= n {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// announceHook makes the broker announce its Topic Alias Maximum in an MQTT 5
// CONNACK: mochi 2.7 accepts aliases up to its capability but never says so,
// and a client that follows the specification uses none unless told.
type announceHook struct {
	mqtt.HookBase
	topicAliasMaximum uint16
}

func (h *announceHook) ID() string { return "announce-limits" }

func (h *announceHook) Provides(b byte) bool {
	return b == mqtt.OnPacketEncode
}

func (h *announceHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 && cl.Properties.ProtocolVersion == 5 {
		pk.Properties.TopicAliasMaximum = h.topicAliasMaximum
	}
	return pk
}
