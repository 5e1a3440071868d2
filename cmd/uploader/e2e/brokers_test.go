package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// The broker account every scenario logs in with.
const (
	brokerUser     = "site042"
	brokerPassword = "s3cret-e2e-pw"
)

// delivery is one PUBLISH a subscriber received.
type delivery struct {
	Topic string
	ID    string // the reading's id, from its JSON payload; "" if it has none
	Seq   string // MQTT 5 user property "seq"; "" otherwise
	QoS   byte
	// Garble is, when the payload is no reading (ID ""), its head and
	// tail, to show what reached the broker instead.
	Garble string
	// Payload is kept when the payload is no reading: the site's status
	// records and will.
	Payload []byte
}

// newDelivery decodes what a subscriber received.
func newDelivery(topic string, payload []byte, seq string, qos byte) delivery {
	d := delivery{Topic: topic, ID: readingID(payload), Seq: seq, QoS: qos}
	if d.ID == "" {
		head, tail := payload[:min(len(payload), 24)], payload[max(0, len(payload)-24):]
		d.Garble = fmt.Sprintf("%d bytes %q ... %q", len(payload), head, tail)
		d.Payload = append([]byte(nil), payload...)
	}
	return d
}

// broker is a real broker the uploader delivers to.
type broker interface {
	Name() string
	Addr() string
	// Watch returns what a subscriber receives on topics under prefix from
	// now on.
	Watch(t *testing.T, prefix string) watcher
}

// watcher lists what was received so far.
type watcher interface {
	Deliveries() []delivery
	Err() error // why it stopped receiving, nil while it works
}

func readingID(payload []byte) string {
	var r struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &r) != nil {
		return ""
	}
	return r.ID
}

// mochiBroker is uplink/brokertest (mochi-mqtt) in the test process; it
// records every message it routes, so no subscriber connection is needed.
type mochiBroker struct{ b *brokertest.Broker }

func startMochi(t *testing.T) *mochiBroker {
	t.Helper()
	b, err := brokertest.Start(brokertest.Options{Username: brokerUser, Password: brokerPassword})
	if err != nil {
		t.Fatalf("mochi broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return &mochiBroker{b: b}
}

func (m *mochiBroker) Name() string { return "mochi" }
func (m *mochiBroker) Addr() string { return m.b.Addr() }

func (m *mochiBroker) Watch(_ *testing.T, prefix string) watcher {
	return mochiWatcher{b: m.b, prefix: prefix + "/", from: len(m.b.Messages())}
}

type mochiWatcher struct {
	b      *brokertest.Broker
	prefix string
	from   int
}

func (w mochiWatcher) Err() error { return nil }

func (w mochiWatcher) Deliveries() []delivery {
	var ds []delivery
	for _, m := range w.b.Messages()[w.from:] {
		if strings.HasPrefix(m.Topic, w.prefix) {
			ds = append(ds, newDelivery(m.Topic, m.Payload, m.Seq, m.QoS))
		}
	}
	return ds
}

// mosquittoBroker is Debian's mosquitto in its own process, with a
// password file and anonymous access refused.
type mosquittoBroker struct {
	addr string
	p    *proc
}

// startMosquitto starts mosquitto on a free loopback port, or skips the
// test when it is not installed.
func startMosquitto(t *testing.T) *mosquittoBroker {
	t.Helper()
	return startMosquittoWith(t, nil)
}

// startMosquittoWith is startMosquitto with more configuration: extra,
// when set, writes what it needs into dir and returns lines to append to
// mosquitto.conf.
func startMosquittoWith(t *testing.T, extra func(dir string) string) *mosquittoBroker {
	t.Helper()
	bin, passwd := findMosquitto()
	if bin == "" || passwd == "" {
		t.Skip("mosquitto is not installed (need /usr/sbin/mosquitto and mosquitto_passwd): apt-get install mosquitto")
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-b", "-c", pwFile, brokerUser, brokerPassword).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	more := ""
	if extra != nil {
		more = extra(dir)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ { // another process may take the free port first
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(mosquittoConfig(port, pwFile)+more), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startProc(t, nil, nil, bin, "-c", conf)
		// Whoever answers must be this mosquitto, not a process that took
		// the port first: mosquitto says "running" once it has bound its
		// listener, and exits at once when it cannot.
		switch {
		case !p.waitStderr(" running", 10*time.Second) && !p.exited():
			lastErr = fmt.Errorf("mosquitto did not say it runs in 10 s: %s", p.stderr.String())
		case p.exited():
			lastErr = fmt.Errorf("mosquitto exited: %s", p.result())
		default:
			lastErr = waitListening(addr, p, 10*time.Second)
		}
		if lastErr == nil {
			t.Cleanup(func() {
				p.signal(syscall.SIGTERM)
				p.wait(10 * time.Second)
			})
			return &mosquittoBroker{addr: addr, p: p}
		}
		p.signal(syscall.SIGKILL)
		p.wait(10 * time.Second)
		lastErr = fmt.Errorf("%w\n%s", lastErr, p.stderr.String())
	}
	t.Fatalf("mosquitto did not start: %v", lastErr)
	return nil
}

func findMosquitto() (bin, passwd string) {
	for _, c := range []string{"/usr/sbin/mosquitto", "mosquitto"} {
		if p, err := exec.LookPath(c); err == nil {
			bin = p
			break
		}
	}
	for _, c := range []string{"mosquitto_passwd", "/usr/bin/mosquitto_passwd"} {
		if p, err := exec.LookPath(c); err == nil {
			passwd = p
			break
		}
	}
	return bin, passwd
}

func mosquittoConfig(port int, pwFile string) string {
	conf := fmt.Sprintf("listener %d 127.0.0.1\n", port) +
		"allow_anonymous false\n" +
		"password_file " + pwFile + "\n" +
		"persistence false\n" +
		// The suite's subscriber must not lose a message to a queue limit.
		"max_queued_messages 100000\n" +
		"log_dest stderr\n"
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to the "mosquitto" user, which cannot
		// read the password file in the test's private temp dir.
		conf += "user root\n"
	}
	return conf
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a connection, p exits or
// timeout passes.
func waitListening(addr string, p *proc, timeout time.Duration) error {
	var lastErr error
	listening := testkit.PollEvery(10*time.Millisecond, timeout, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		lastErr = err
		return p.exited()
	})
	switch {
	case p.exited():
		return fmt.Errorf("%s exited: %s", p.name, p.result())
	case !listening:
		return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, lastErr)
	}
	return nil
}

func (m *mosquittoBroker) Name() string { return "mosquitto" }
func (m *mosquittoBroker) Addr() string { return m.addr }

func (m *mosquittoBroker) Watch(t *testing.T, prefix string) watcher {
	t.Helper()
	s, err := subscribe(m.addr, brokerUser, brokerPassword, prefix+"/#")
	if err != nil {
		t.Fatalf("subscriber on mosquitto: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// subscriber is a minimal MQTT 5 client built on codec: it subscribes with
// QoS 1 and acknowledges every QoS 1 PUBLISH. MQTT 5 lets it see the "seq"
// user property the uploader attaches.
type subscriber struct {
	conn net.Conn
	dec  *codec.Decoder

	mu     sync.Mutex
	ds     []delivery
	err    error // why the read loop ended, unless close ended it
	closed bool
	done   chan struct{}
}

var subscriberCount atomic.Int64

// subscriberIdle bounds each wait of the read loop; the suite's scenarios
// never leave a subscriber silent that long.
const subscriberIdle = 10 * time.Minute

func subscribe(addr, user, password, filter string) (*subscriber, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s := &subscriber{conn: conn, dec: codec.NewDecoder(conn, codec.V5, 1<<20), done: make(chan struct{})}
	if err := s.handshake(user, password, filter); err != nil {
		conn.Close()
		return nil, err
	}
	go s.readLoop()
	return s, nil
}

func (s *subscriber) handshake(user, password, filter string) error {
	_ = s.conn.SetDeadline(time.Now().Add(5 * time.Second))
	connect := &codec.Connect{Version: codec.V5, ClientID: fmt.Sprintf("e2e-sub-%d-%d", os.Getpid(), subscriberCount.Add(1)),
		CleanStart: true, HasUsername: true, Username: user, HasPassword: true, Password: []byte(password)}
	pkt, err := codec.AppendConnect(nil, connect)
	if err != nil {
		return fmt.Errorf("encode CONNECT: %w", err)
	}
	pkt, err = codec.AppendSubscribe(pkt, codec.V5, &codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: filter, QoS: 1}}})
	if err != nil {
		return fmt.Errorf("encode SUBSCRIBE: %w", err)
	}
	if _, err := s.conn.Write(pkt); err != nil {
		return fmt.Errorf("send CONNECT and SUBSCRIBE: %w", err)
	}
	p, err := s.dec.Next()
	if err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if p.Type != codec.TypeConnack {
		return fmt.Errorf("got %v, want CONNACK", p.Type)
	}
	if err := p.Connack.Err(codec.V5); err != nil {
		return fmt.Errorf("subscriber login: %w", err)
	}
	p, err = s.dec.Next()
	if err != nil {
		return fmt.Errorf("read SUBACK: %w", err)
	}
	if p.Type != codec.TypeSuback || len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] > 2 {
		return fmt.Errorf("subscription to %s refused: %v %v", filter, p.Type, p.Suback.ReasonCodes)
	}
	return s.conn.SetDeadline(time.Time{})
}

func (s *subscriber) readLoop() {
	defer close(s.done)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(subscriberIdle))
		p, err := s.dec.Next()
		if err != nil {
			s.mu.Lock()
			if !s.closed {
				s.err = err
			}
			s.mu.Unlock()
			return
		}
		if p.Type != codec.TypePublish {
			continue
		}
		seq := ""
		for _, up := range p.Publish.UserProperties {
			if up.Key == "seq" {
				seq = up.Value
			}
		}
		d := newDelivery(p.Publish.Topic, p.Publish.Payload, seq, p.Publish.QoS)
		s.mu.Lock()
		s.ds = append(s.ds, d)
		s.mu.Unlock()
		if p.Publish.QoS == 1 {
			ack, err := codec.AppendAck(nil, codec.V5, codec.TypePuback, p.Publish.PacketID, 0)
			if err == nil {
				_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err = s.conn.Write(ack)
			}
			if err != nil {
				s.mu.Lock()
				s.err = fmt.Errorf("send PUBACK: %w", err)
				s.mu.Unlock()
				return
			}
		}
	}
}

// Deliveries returns what arrived so far.
func (s *subscriber) Deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.ds...)
}

// Err is why the subscriber stopped receiving; nil while it is connected.
// A subscriber that lost its connection cannot vouch for what it missed.
func (s *subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.conn.Close()
	<-s.done
}
