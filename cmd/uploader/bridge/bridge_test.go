package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/pack"
)

const (
	testUser     = "bridge"
	testPassword = "s3cret-bridge"
	testWait     = 20 * time.Second
)

func startBroker(t *testing.T) *brokertest.Broker {
	t.Helper()
	b, err := brokertest.Start(brokertest.Options{Username: testUser, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// site publishes packs the way a window does: QoS 1 on its pack topic.
type site struct {
	t      *testing.T
	id     string
	client *paho.Client
	enc    pack.Encoder
}

func newSite(t *testing.T, addr, id string) *site {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testWait)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, ClientID: id})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: testUser, UsernameFlag: true, Password: []byte(testPassword), PasswordFlag: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return &site{t: t, id: id, client: c}
}

// readings returns readings with seqs from..to on two topics.
func (s *site) readings(from, to uint64) []pack.Reading {
	var rs []pack.Reading
	for q := from; q <= to; q++ {
		rs = append(rs, pack.Reading{Seq: q, Time: time.UnixMilli(1_700_000_000_000 + int64(q)*1000), Topic: fmt.Sprintf("sites/%s/t%d", s.id, q%2),
			QoS: byte(q % 2), Payload: fmt.Appendf(nil, `{"seq":%d,"pm25":%d.%d}`, q, 10+q%7, q%10)})
	}
	return rs
}

func (s *site) encode(rs []pack.Reading) []byte {
	s.t.Helper()
	b, err := s.enc.Encode(nil, s.id, rs, pack.Deflate)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *site) publish(payload []byte) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, err := s.client.Publish(ctx, &paho.Publish{Topic: "uploader/" + s.id + "/pack", QoS: 1, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: pack.ContentType}}); err != nil {
		s.t.Fatal(err)
	}
}

// runBridge runs a bridge on state until the test ends or stop is called.
func runBridge(t *testing.T, addr string, st *State, chunk int, setup func(b *Bridge, ctx context.Context)) (b *Bridge, handled chan struct{}, stop func()) {
	t.Helper()
	b, err := New(Config{Broker: addr, Username: testUser, Password: []byte(testPassword), ClientID: "test-bridge",
		Filters: []string{"uploader/+/pack"}, KeepAlive: 30, ReplyTimeout: testWait, Chunk: chunk,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}, st)
	if err != nil {
		t.Fatal(err)
	}
	handled = make(chan struct{}, 100)
	b.handled = func() { handled <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	if setup != nil {
		setup(b, ctx)
	}
	subscribed := make(chan struct{}, 1)
	b.connected = func() {
		select {
		case subscribed <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge Run: %v", err)
			}
		case <-time.After(testWait):
			t.Errorf("bridge still running %v after its context ended", testWait)
		}
	}
	t.Cleanup(stop)
	select {
	case <-subscribed:
	case <-time.After(testWait):
		t.Fatal("bridge did not connect")
	}
	return b, handled, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func waitHandled(t *testing.T, handled chan struct{}, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-handled:
		case <-time.After(testWait):
			t.Fatalf("%d of %d packs handled in %v", i, n, testWait)
		}
	}
}

// republished counts, per site topic and seq, the readings the broker
// routed (the packs themselves excluded).
func republished(brk *brokertest.Broker) map[string]int {
	got := map[string]int{}
	for _, m := range brk.Messages() {
		if len(m.Topic) > 6 && m.Topic[:6] == "sites/" {
			got[m.Topic+"#"+m.Seq]++
		}
	}
	return got
}

func openState(t *testing.T, path string) *State {
	t.Helper()
	st, err := OpenState(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestBridgeRepublishesEachReadingOnceAndRejectsDamagedPacks(t *testing.T) {
	brk := startBroker(t)
	st := openState(t, filepath.Join(t.TempDir(), "bridge.db"))
	b, handled, stop := runBridge(t, brk.Addr(), st, 16, nil)
	a, c := newSite(t, brk.Addr(), "site-a"), newSite(t, brk.Addr(), "site-c")

	p1 := a.encode(a.readings(1, 100))
	truncated := p1[:len(p1)-7]
	flipped := append([]byte(nil), p1...)
	flipped[len(flipped)/2] ^= 0x20
	packs := [][]byte{
		p1,
		truncated,
		a.encode(a.readings(101, 150)),
		p1,                             // the same pack again: a window that lost its PUBACK
		a.encode(a.readings(140, 160)), // overlapping: packed again after a failed window
		flipped,
	}
	for _, p := range packs {
		a.publish(p)
	}
	c.publish(c.encode(c.readings(1, 30))) // another site's seqs are its own
	waitHandled(t, handled, len(packs)+1)

	want := 160 + 30
	if !brk.WaitCount(want+len(packs)+1, testWait) {
		t.Fatalf("broker routed %d messages, want %d readings and %d packs", brk.Count(), want, len(packs)+1)
	}
	got := republished(brk)
	if len(got) != want {
		t.Errorf("%d distinct readings republished, want %d", len(got), want)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s republished %d times", k, n)
		}
	}
	for q := uint64(1); q <= 160; q++ {
		k := fmt.Sprintf("sites/site-a/t%d#%d", q%2, q)
		if got[k] != 1 {
			t.Errorf("reading %s republished %d times, want once", k, got[k])
		}
	}
	stop()
	s := b.Stats()
	if s.Rejected != 2 || s.Packs != 5 || s.Republished != int64(want) || s.Duplicates != 100+11 {
		t.Errorf("stats %s; want packs=5 rejected=2 republished=%d duplicates=111", &s, want)
	}
	// The readings keep topic, payload and QoS (at least 1); seq and client
	// id ride along as user properties.
	for _, m := range brk.Messages() {
		if m.Topic == "sites/site-c/t1" && m.Seq == "7" {
			if string(m.Payload) != `{"seq":7,"pm25":10.7}` || m.QoS != 1 {
				t.Errorf("seq 7 of site-c: %q at QoS %d", m.Payload, m.QoS)
			}
		}
	}
}

// Ensure a reading the broker refuses for good (here an ACL: reason 0x87)
// goes to the refused-readings file with its seq recorded, while the rest
// of its pack, and every pack behind it, still go out on the same
// connection.
func TestBridgeKeepsAReadingRefusedForGoodAsideAndGoesOn(t *testing.T) {
	const denied = "sites/site-a/denied"
	brk, err := brokertest.Start(brokertest.Options{Username: testUser, Password: testPassword, DenyPublish: []string{denied}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brk.Close() })
	dir := t.TempDir()
	st := openState(t, filepath.Join(dir, "bridge.db"))
	refusedPath := filepath.Join(dir, "refused.ndjson")
	refused, err := OpenRefusedLog(refusedPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, handled, stop := runBridge(t, brk.Addr(), st, 8, func(b *Bridge, _ context.Context) { b.cfg.Refused = refused })
	a := newSite(t, brk.Addr(), "site-a")

	first := a.readings(1, 20)
	first[6].Topic = denied // seq 7, in the first chunk of 8
	a.publish(a.encode(first))
	a.publish(a.encode(a.readings(21, 30)))
	waitHandled(t, handled, 2)

	if !brk.WaitCount(29+2, testWait) {
		t.Fatalf("broker routed %d messages, want 29 readings and 2 packs", brk.Count())
	}
	got := republished(brk)
	if len(got) != 29 || got[denied+"#7"] != 0 {
		t.Errorf("%d distinct readings republished (%d of seq 7), want the 29 others", len(got), got[denied+"#7"])
	}
	if seen, err := st.Seen("site-a", 7); err != nil || !seen {
		t.Errorf("seq 7 seen=%v (err %v): a refused reading must not come again", seen, err)
	}
	lines := readRefused(t, refusedPath)
	if len(lines) != 1 || lines[0].ClientID != "site-a" || lines[0].Seq != 7 || lines[0].Topic != denied ||
		lines[0].Reason != "0x87" || lines[0].Payload != string(first[6].Payload) {
		t.Errorf("refused-readings file: %+v; want seq 7 of site-a on %s, reason 0x87", lines, denied)
	}
	stop()
	if s := b.Stats(); s.Packs != 2 || s.Republished != 29 || s.Refused != 1 || s.Connects != 1 {
		t.Errorf("stats %s; want packs=2 republished=29 refused=1 connects=1", &s)
	}
}

func TestBridgeStoppedMidPackLosesNothingAndSkipsWhatItRecorded(t *testing.T) {
	brk := startBroker(t)
	path := filepath.Join(t.TempDir(), "bridge.db")
	st := openState(t, path)
	const chunk, n = 25, 200
	midPack := make(chan struct{})
	b, _, stop := runBridge(t, brk.Addr(), st, chunk, func(b *Bridge, ctx context.Context) {
		b.inPack = func(p *pack.Pack, done int) {
			if done == chunk {
				// Stop the bridge here, with one chunk recorded: the
				// pack stays unacknowledged in the broker's session.
				close(midPack)
				<-ctx.Done()
			}
		}
	})
	a := newSite(t, brk.Addr(), "site-a")
	a.publish(a.encode(a.readings(1, n)))
	select {
	case <-midPack:
		stop()
	case <-time.After(testWait):
		t.Fatal("the bridge recorded no chunk")
	}
	first := b.Stats()
	if first.Packs != 0 {
		t.Fatalf("the pack was acknowledged before all its readings went out: %s", &first)
	}

	// A new bridge on the same state and client id gets the pack again.
	b2, handled, stop2 := runBridge(t, brk.Addr(), st, chunk, nil)
	waitHandled(t, handled, 1)
	stop2()
	second := b2.Stats()
	if second.Packs != 1 || second.Duplicates != chunk || first.Republished+second.Republished < n {
		t.Errorf("first run %s, second %s; want the second to skip the %d recorded readings and send the rest", &first, &second, chunk)
	}
	if !brk.WaitCount(n+1, testWait) {
		t.Fatalf("broker routed %d messages, want at least %d", brk.Count(), n+1)
	}
	got := republished(brk)
	dups := 0
	for q := 1; q <= n; q++ {
		k := fmt.Sprintf("sites/site-a/t%d#%s", q%2, strconv.Itoa(q))
		if got[k] == 0 {
			t.Errorf("reading %s lost", k)
		}
		dups += max(got[k]-1, 0)
	}
	// Readings of the chunk in flight when the bridge stopped may go out
	// twice; recorded ones never do.
	if dups > chunk {
		t.Errorf("%d readings republished twice, more than the chunk of %d in flight", dups, chunk)
	}
	t.Logf("first run %s; second run %s; %d republished twice", &first, &second, dups)
}

func TestBridgeFailsFastOnWrongPassword(t *testing.T) {
	brk := startBroker(t)
	st := openState(t, filepath.Join(t.TempDir(), "bridge.db"))
	b, err := New(Config{Broker: brk.Addr(), Username: testUser, Password: []byte("wrong"), Filters: []string{"#"}, ReplyTimeout: testWait}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := b.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a wrong password: %v (context %v), want a refusal before the deadline", err, ctx.Err())
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Filters: []string{"#"}},
		{Broker: "no-port", Filters: []string{"#"}},
		{Broker: "127.0.0.1:1883"},
	} {
		if _, err := New(c, nil); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
