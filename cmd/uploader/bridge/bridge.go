package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/nbiot-uploader/uploader/uplink/pack"
)

// Defaults of Config.
const (
	DefaultClientID      = "uploader-bridge"
	DefaultKeepAlive     = 60
	DefaultReplyTimeout  = 30 * time.Second
	DefaultChunk         = 64
	DefaultSessionExpiry = 7 * 24 * time.Hour
	// receiveMaximum is the most unacknowledged packs the broker may send
	// at once (CONNECT Receive Maximum): the bridge works on one at a time
	// and keeps the next few queued.
	receiveMaximum = 8
	// qos0Backlog bounds the QoS 0 packs (not flow-controlled by the
	// broker) queued behind the one being worked on.
	qos0Backlog = 256
	// ackInterval is how often paho sends the acknowledgements the bridge
	// released (in the order the packs came); shutdown waits two of them.
	ackInterval = 10 * time.Millisecond
)

// Config is what Run needs.
type Config struct {
	Broker   string      // host:port
	TLS      *tls.Config // nil: plain TCP
	ClientID string
	Username string
	Password []byte // never logged
	// Filters are the topic filters the packs arrive on (QoS 1,
	// No Local).
	Filters []string
	// KeepAlive in seconds; ReplyTimeout bounds every wait for the broker
	// (CONNACK, SUBACK, each PUBACK).
	KeepAlive    uint16
	ReplyTimeout time.Duration
	// SessionExpiry keeps the broker's session, with the packs queued for
	// the bridge, this long after a disconnect.
	SessionExpiry time.Duration
	// Chunk is how many readings are republished at once; the state
	// records them after each chunk, so a kill mid-pack republishes at
	// most one chunk again.
	Chunk int
	// RetryMin and RetryMax bound the delay before a reconnect (it doubles
	// from RetryMin after each failure in a row).
	RetryMin, RetryMax time.Duration
	// Refused keeps the readings the broker refused for good; nil logs
	// them only.
	Refused *RefusedLog
	Log     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.SessionExpiry <= 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.Chunk <= 0 {
		c.Chunk = DefaultChunk
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(c.RetryMin, 30*time.Second)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Stats count what one Run did.
type Stats struct {
	Packs       int64 // packs acknowledged after all their readings went out
	Rejected    int64 // corrupt or truncated packs, rejected whole
	Republished int64 // readings republished and acknowledged by the broker
	Duplicates  int64 // readings skipped: their client id + seq was republished before
	Forgotten   int64 // never-seen seqs the state's bound made count as seen
	// Refused counts readings the broker refused for good (a PUBACK reason
	// other than Quota exceeded): written to Config.Refused and recorded
	// as done, so that one reading the broker will never take cannot hold
	// back every pack behind it.
	Refused  int64
	Connects int64
}

func (s *Stats) String() string {
	return fmt.Sprintf("packs=%d rejected=%d republished=%d duplicates=%d forgotten=%d refused=%d connects=%d",
		s.Packs, s.Rejected, s.Republished, s.Duplicates, s.Forgotten, s.Refused, s.Connects)
}

// ErrRefused marks a reading the broker did not take for now (PUBACK
// reason 0x97, Quota exceeded): its pack stays unacknowledged and comes
// again after a reconnect, which waits the growing retry delay. Other
// refusals are for good: the reading goes to Config.Refused
// (Stats.Refused) and its pack goes on.
var ErrRefused = errors.New("broker refused a republished reading for now")

// quotaExceeded is the PUBACK reason that refuses a reading for now only.
const quotaExceeded = 0x97

// Bridge republishes packs. Create it with New, run it with Run.
type Bridge struct {
	cfg   Config
	state *State
	log   *slog.Logger

	packs, rejected, republished, duplicates, forgotten, refused, connects atomic.Int64

	// inPack, when set, is called after each chunk of a pack was recorded
	// in the state (for tests: done of all readings of the pack so far);
	// handled after each pack acknowledged (republished or rejected).
	inPack    func(p *pack.Pack, done int)
	handled   func()
	connected func()
}

// New returns a bridge using state for de-duplication.
func New(cfg Config, state *State) (*Bridge, error) {
	cfg.setDefaults()
	if cfg.Broker == "" {
		return nil, errors.New("bridge: no broker (host:port)")
	}
	if _, _, err := net.SplitHostPort(cfg.Broker); err != nil {
		return nil, fmt.Errorf("bridge: broker %q: %w", cfg.Broker, err)
	}
	if len(cfg.Filters) == 0 {
		return nil, errors.New("bridge: no topic filter to subscribe to")
	}
	return &Bridge{cfg: cfg, state: state, log: cfg.Log}, nil
}

// Stats returns the counts so far.
func (b *Bridge) Stats() Stats {
	return Stats{Packs: b.packs.Load(), Rejected: b.rejected.Load(), Republished: b.republished.Load(),
		Duplicates: b.duplicates.Load(), Forgotten: b.forgotten.Load(), Refused: b.refused.Load(), Connects: b.connects.Load()}
}

// Run connects, subscribes and republishes until ctx ends, reconnecting
// after every failure with a doubling delay. It returns nil when ctx
// ended, or the error of a first connection the broker refused for good
// (bad credentials, not authorized).
func (b *Bridge) Run(ctx context.Context) error {
	delay := b.cfg.RetryMin
	first := true
	for {
		up, err := b.connection(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var refused *connectRefused
		if first && errors.As(err, &refused) && refused.permanent() {
			return err
		}
		if up {
			first = false
			delay = b.cfg.RetryMin
		}
		b.log.Warn("bridge: connection ended; reconnecting", "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, b.cfg.RetryMax)
	}
}

// connectRefused is a CONNACK with a failure reason code.
type connectRefused struct {
	code byte
	err  error
}

func (e *connectRefused) Error() string {
	return fmt.Sprintf("broker refused the connection (reason 0x%02x): %v", e.code, e.err)
}
func (e *connectRefused) Unwrap() error { return e.err }

// permanent: bad user name or password, not authorized, banned, bad
// client id: retrying the same CONNECT cannot help.
func (e *connectRefused) permanent() bool {
	switch e.code {
	case 0x85, 0x86, 0x87, 0x8A, 0x8C:
		return true
	}
	return false
}

// delivery is one received pack.
type delivery struct {
	pb *paho.Publish
}

// connection runs one MQTT connection until it breaks or ctx ends. up
// reports whether it got as far as the SUBACK.
func (b *Bridge) connection(ctx context.Context) (up bool, err error) {
	dialer := &net.Dialer{Timeout: b.cfg.ReplyTimeout}
	var conn net.Conn
	if b.cfg.TLS != nil {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: b.cfg.TLS}).DialContext(ctx, "tcp", b.cfg.Broker)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", b.cfg.Broker)
	}
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", b.cfg.Broker, err)
	}
	queue := make(chan delivery, receiveMaximum+qos0Backlog)
	broken := make(chan error, 1)
	client := paho.NewClient(paho.ClientConfig{
		Conn:                       conn,
		ClientID:                   b.cfg.ClientID,
		PacketTimeout:              b.cfg.ReplyTimeout,
		EnableManualAcknowledgment: true,
		SendAcksInterval:           ackInterval,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if pr.Packet.QoS == 0 {
				select {
				case queue <- delivery{pr.Packet}:
				default:
					b.log.Error("bridge: QoS 0 pack dropped: more than the backlog queued", "topic", pr.Packet.Topic, "bytes", len(pr.Packet.Payload), "backlog", qos0Backlog)
				}
				return true, nil
			}
			// The broker sends at most receiveMaximum unacknowledged
			// QoS 1 packs, so this never blocks paho's reader.
			queue <- delivery{pr.Packet}
			return true, nil
		}},
		OnClientError: func(err error) {
			select {
			case broken <- err:
			default:
			}
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case broken <- fmt.Errorf("broker sent DISCONNECT (reason 0x%02x)", d.ReasonCode):
			default:
			}
		},
	})
	expiry := uint32(min(b.cfg.SessionExpiry/time.Second, 0xFFFFFFFF))
	rm := uint16(receiveMaximum)
	cp := &paho.Connect{
		ClientID:   b.cfg.ClientID,
		KeepAlive:  b.cfg.KeepAlive,
		CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, ReceiveMaximum: &rm},
	}
	if b.cfg.Username != "" {
		cp.Username, cp.UsernameFlag = b.cfg.Username, true
	}
	if b.cfg.Password != nil {
		cp.Password, cp.PasswordFlag = b.cfg.Password, true
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.ReplyTimeout)
	ca, err := client.Connect(cctx, cp)
	cancel()
	if err != nil {
		conn.Close()
		if ca != nil && ca.ReasonCode >= 0x80 {
			return false, &connectRefused{ca.ReasonCode, err}
		}
		return false, fmt.Errorf("connect to %s: %w", b.cfg.Broker, err)
	}
	b.connects.Add(1)
	defer func() {
		_ = client.Disconnect(&paho.Disconnect{ReasonCode: 0})
		<-client.Done()
	}()

	// With a session present the subscriptions are in it (and mochi
	// refuses a SUBSCRIBE whose packet id equals that of a pack it
	// redelivers, 0x91).
	if !ca.SessionPresent {
		subs := make([]paho.SubscribeOptions, len(b.cfg.Filters))
		for i, f := range b.cfg.Filters {
			subs[i] = paho.SubscribeOptions{Topic: f, QoS: 1, NoLocal: true}
		}
		sctx, cancelSub := context.WithTimeout(ctx, b.cfg.ReplyTimeout)
		sa, err := client.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs})
		cancelSub()
		if err != nil {
			if sa != nil {
				err = fmt.Errorf("%w (reasons %x)", err, sa.Reasons)
			}
			return false, fmt.Errorf("subscribe %v: %w", b.cfg.Filters, err)
		}
		for i, code := range sa.Reasons {
			if code >= 0x80 {
				return false, fmt.Errorf("subscribe %q: broker refused (reason 0x%02x)", b.cfg.Filters[min(i, len(b.cfg.Filters)-1)], code)
			}
		}
	}
	b.log.Info("bridge: subscribed", "broker", b.cfg.Broker, "client_id", b.cfg.ClientID, "filters", b.cfg.Filters, "session_present", ca.SessionPresent)
	if b.connected != nil {
		b.connected()
	}

	// One worker works the packs in the order they came, so their
	// acknowledgements go out in that order too (MQTT's rule).
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	werr := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-wctx.Done():
				return
			case d := <-queue:
				if err := b.handle(wctx, client, d.pb); err != nil {
					werr <- err
					return
				}
			}
		}
	})
	select {
	case <-ctx.Done():
		err = nil
	case err = <-broken:
	case err = <-werr:
	case <-client.Done():
		err = errors.New("connection closed")
	}
	stop()
	wg.Wait()
	if err == nil {
		// Let paho send the acknowledgements released last (it sends them
		// every ackInterval); one that misses the DISCONNECT only brings
		// its pack again, and the state skips its readings.
		t := time.NewTimer(2 * ackInterval)
		<-t.C
	}
	return true, err
}

// handle republishes one pack and acknowledges it; an error leaves it
// unacknowledged and ends the connection.
func (b *Bridge) handle(ctx context.Context, client *paho.Client, pb *paho.Publish) error {
	p, err := pack.Decode(pb.Payload)
	if err != nil {
		// Rejected whole and acknowledged: the broker would bring the same
		// bytes again forever, holding back every pack behind it.
		b.rejected.Add(1)
		b.log.Error("bridge: pack rejected whole, acknowledged and dropped", "topic", pb.Topic, "bytes", len(pb.Payload), "err", err)
		return b.ack(client, pb)
	}
	var fresh []pack.Reading
	for _, r := range p.Readings {
		seen, err := b.state.Seen(p.ClientID, r.Seq)
		if err != nil {
			return err
		}
		if seen {
			b.duplicates.Add(1)
			continue
		}
		fresh = append(fresh, r)
	}
	if skipped := len(p.Readings) - len(fresh); skipped > 0 {
		b.log.Info("bridge: duplicate readings skipped", "client_id", p.ClientID, "count", skipped, "pack_readings", len(p.Readings))
	}
	done := len(p.Readings) - len(fresh)
	for len(fresh) > 0 {
		n := min(b.cfg.Chunk, len(fresh))
		chunk := fresh[:n]
		outcomes := b.republish(ctx, client, p.ClientID, chunk)
		// What the broker took, or refused for good, is done: recorded
		// even when another reading of the chunk failed, so the pack's
		// next delivery sends only what is left.
		var seqs []uint64
		var failed []error
		var refusals []Refusal
		for i, o := range outcomes {
			switch {
			case o.err != nil:
				failed = append(failed, o.err)
			case o.refusedFor != 0:
				refusals = append(refusals, Refusal{chunk[i], o.refusedFor})
			default:
				seqs = append(seqs, chunk[i].Seq)
			}
		}
		republished := len(seqs)
		if len(refusals) > 0 {
			if err := b.keepRefused(p.ClientID, refusals); err != nil {
				failed = append(failed, err)
			} else {
				for _, rf := range refusals {
					seqs = append(seqs, rf.Reading.Seq)
				}
			}
		}
		refused := len(seqs) - republished
		if len(seqs) > 0 {
			forgotten, err := b.state.Record(p.ClientID, seqs)
			if err != nil {
				return err
			}
			if forgotten > 0 {
				b.forgotten.Add(int64(forgotten))
				b.log.Warn("bridge: state bound reached; the oldest gap of seqs now counts as seen", "client_id", p.ClientID, "seqs", forgotten)
			}
		}
		b.republished.Add(int64(republished))
		b.refused.Add(int64(refused))
		if len(failed) > 0 {
			return errors.Join(failed...)
		}
		done += n
		fresh = fresh[n:]
		b.log.Debug("bridge: chunk recorded", "client_id", p.ClientID, "readings", n, "done", done, "of", len(p.Readings))
		if b.inPack != nil {
			b.inPack(p, done)
		}
	}
	b.packs.Add(1)
	b.log.Info("bridge: pack republished", "client_id", p.ClientID, "topic", pb.Topic, "readings", len(p.Readings), "compression", p.Compression.String())
	return b.ack(client, pb)
}

func (b *Bridge) ack(client *paho.Client, pb *paho.Publish) error {
	if err := client.Ack(pb); err != nil {
		return fmt.Errorf("acknowledge pack on %s: %w", pb.Topic, err)
	}
	if b.handled != nil {
		b.handled()
	}
	return nil
}

// keepRefused writes readings the broker refused for good to the
// refused-readings file, one sync for them all, and logs each. Only an
// error writing the file keeps their pack unacknowledged.
func (b *Bridge) keepRefused(clientID string, refusals []Refusal) error {
	kept, why := 0, "dropped (no refused-readings file)"
	if b.cfg.Refused != nil {
		var err error
		if kept, err = b.cfg.Refused.Append(clientID, refusals, time.Now()); err != nil {
			return fmt.Errorf("keep %d refused reading(s) of %q: %w", len(refusals), clientID, err)
		}
		why = "dropped: the refused-readings file " + b.cfg.Refused.Path() + " is full"
	}
	for i, rf := range refusals {
		msg := "bridge: broker refused a reading for good; " + why
		if i < kept {
			msg = "bridge: broker refused a reading for good; kept in " + b.cfg.Refused.Path()
		}
		b.log.Error(msg, "client_id", clientID, "seq", rf.Reading.Seq, "topic", rf.Reading.Topic,
			"payload_bytes", len(rf.Reading.Payload), "reason", fmt.Sprintf("0x%02x", rf.Reason))
	}
	return nil
}

// outcome is what became of one republished reading: acknowledged (zero),
// refused for good (refusedFor, the PUBACK reason), or not done (err: no
// answer, or refused for now with ErrRefused).
type outcome struct {
	refusedFor byte
	err        error
}

// republish sends rs at once and waits for every acknowledgement.
func (b *Bridge) republish(ctx context.Context, client *paho.Client, clientID string, rs []pack.Reading) []outcome {
	outs := make([]outcome, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			qos := max(r.QoS, 1) // acknowledged, so the pack can be
			pctx, cancel := context.WithTimeout(ctx, b.cfg.ReplyTimeout)
			defer cancel()
			resp, err := client.Publish(pctx, &paho.Publish{
				Topic: r.Topic, QoS: qos, Retain: r.Retain, Payload: r.Payload,
				Properties: &paho.PublishProperties{User: paho.UserProperties{
					{Key: "seq", Value: strconv.FormatUint(r.Seq, 10)},
					{Key: "client_id", Value: clientID},
				}},
			})
			// paho returns the PUBACK with an error when its reason is
			// 0x80 or more, so the reason is looked at first.
			switch {
			case resp != nil && resp.ReasonCode == quotaExceeded:
				outs[i].err = fmt.Errorf("republish seq %d of %q on %q: %w (reason 0x%02x)", r.Seq, clientID, r.Topic, ErrRefused, resp.ReasonCode)
			case resp != nil && resp.ReasonCode >= 0x80:
				outs[i].refusedFor = resp.ReasonCode
			case err != nil:
				outs[i].err = fmt.Errorf("republish seq %d of %q on %q: %w", r.Seq, clientID, r.Topic, err)
			default:
				b.log.Debug("bridge: republished", "client_id", clientID, "seq", r.Seq, "topic", r.Topic)
			}
		})
	}
	wg.Wait()
	return outs
}
