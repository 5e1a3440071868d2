package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

// aLongTimeAgo is a deadline in the past: setting it unblocks a pending
// Read or Write at once.
var aLongTimeAgo = time.Unix(1, 0)

// session is the state of one Run. Everything but the reader lives on the
// caller's goroutine, so no field needs a lock.
type session struct {
	ctx   context.Context
	conn  net.Conn
	store Store
	cfg   Config
	log   *slog.Logger
	v     codec.Version
	rd    *reader
	res   Result

	out       []byte        // whole packets not yet written; see flushFull
	keepAlive time.Duration // ours, or the broker's MQTT 5 Server Keep Alive
	lastWrite time.Time
	progress  time.Time // last reply, or last write of a packet that asks for one
	// expectReply is set while out holds a packet the broker must answer
	// (CONNECT, PUBLISH, PUBREL, a proof PINGREQ); writing it restarts the
	// reply clock, writing only our answers to the broker's packets does not.
	expectReply bool

	connacked   bool
	priorBroken bool // the CONNACK has tighter limits than Config.Prior, under which records went ahead of it
	inflightMax int
	maxQoS      byte
	retainOK    bool
	maxPacket   int // the broker's Maximum Packet Size; 0 = none announced
	aliases     *aliasTable

	inflight map[uint16]*flight
	win      window
	nextID   uint16
	qos0     []uint64   // QoS 0 records written and not yet covered by a PINGREQ
	pings    [][]uint64 // per outstanding PINGREQ, the QoS 0 records its PINGRESP proves
	acked    []uint64   // proven records not yet handed to Store.Ack

	inboundQoS2 map[uint16]bool // broker PUBLISH ids answered with PUBREC, awaiting PUBREL

	// Downlink (subscribe.go, inbox.go).
	inboxFull    bool      // the Inbox refused a message; refuse the rest
	subID        uint16    // SUBSCRIBE awaiting SUBACK; 0 when none
	unsubID      uint16    // UNSUBSCRIBE awaiting UNSUBACK; 0 when none
	downlinkFrom time.Time // SUBACK, or CONNACK when nothing was subscribed
	downlinkSeen int       // inbound PUBLISH packets so far

	// isolated is the struck record being sent alone; 0 when none.
	isolated uint64

	pending  []Record // read from the store, not yet taken
	lastRead uint64
	drained  bool
	taken    int

	// what the connection was last told by pace
	paced        bool
	pacedDue     int
	pacedBlocked bool

	pub   codec.Publish
	props [1]codec.UserProperty
	warn  warnOnce
	rdErr error // the error that stopped the reader
}

// flight is a QoS 1 or 2 PUBLISH waiting for its acknowledgement.
type flight struct {
	seq      uint64
	qos      byte
	released bool      // QoS 2: PUBREC arrived and PUBREL was queued
	size     int       // PUBLISH bytes, for the window's byte budget
	sent     time.Time // when it joined the window
	status   bool      // the session's own status message, not a queue record
}

// Run performs one session on conn: CONNECT, stream, acknowledgements,
// DISCONNECT. It does not close conn. Every error is a *fault.StepError naming the
// step; the returned Result is valid even when err != nil and counts what was
// acknowledged (and deleted) before the failure. Records that were not
// acknowledged stay queued.
func Run(ctx context.Context, conn net.Conn, store Store, cfg Config) (Result, error) {
	if conn == nil || store == nil {
		return Result{}, &fault.StepError{Step: StepConnect, Err: errors.New("session needs a connection and a store")}
	}
	cfg = cfg.withDefaults(conn)
	s := &session{
		ctx:         ctx,
		conn:        conn,
		store:       store,
		cfg:         cfg,
		log:         cfg.Logger,
		v:           cfg.Version,
		out:         make([]byte, 0, 2*cfg.ChunkSize),
		inflight:    make(map[uint16]*flight),
		inboundQoS2: make(map[uint16]bool),
		maxQoS:      2,
		retainOK:    true,
		inflightMax: cfg.InFlight,
		aliases:     newAliasTable(0),
		keepAlive:   time.Duration(cfg.KeepAlive) * time.Second,
		win:         window{chunkBytes: cfg.ChunkSize},
		nextID:      cfg.Downlink.LastPacketID,
	}
	switch {
	case cfg.Prior != nil:
		s.applyLimits(cfg.Prior)
	case cfg.Version == codec.V5:
		// Receive Maximum is unknown until CONNACK, but it is never below 1.
		s.inflightMax = 1
	}
	if err := ctx.Err(); err != nil {
		return s.res, &fault.StepError{Step: StepConnect, Err: err}
	}
	// Cancelling ctx unblocks whatever Read or Write is pending.
	stopWatch := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	// Hint before the reader's first Read, so a paced connection does not
	// poll for replies before anything was sent.
	s.pace(false)
	s.rd = startReader(conn, cfg.Version)

	err := s.run()
	if err != nil {
		s.salvage()
	}

	stopWatch()
	s.rd.shutdown(conn)
	_ = conn.SetDeadline(time.Time{})
	// What the broker acknowledged is deleted whatever happened afterwards.
	if aerr := s.flushAcks(); aerr != nil && err == nil {
		err = aerr
	}
	s.res.BytesIn = s.rd.bytesIn.Load()
	s.res.Downlink.LastPacketID = s.nextID
	s.log.Info("mqtt session ended", "sent", s.res.Sent, "acked", s.res.Acked,
		"skipped", s.res.Skipped, "expired", s.res.Expired, "rejected", s.res.Rejected,
		"quarantined", s.res.Quarantined, "struck", s.res.Struck,
		"bytes_out", s.res.BytesOut, "bytes_in", s.res.BytesIn, "writes", s.res.Writes, "err", err)
	return s.res, err
}

// salvage applies the acknowledgements that had already arrived when the
// session failed, so their records are deleted now rather than sent again in
// the next window.
func (s *session) salvage() {
	for {
		select {
		case ev, ok := <-s.rd.events:
			if !ok || ev.err != nil {
				return
			}
			switch ev.typ {
			case codec.TypePuback, codec.TypePubcomp, codec.TypePingresp:
				if err := s.handle(ev, true); err != nil {
					return
				}
			}
		default:
			return
		}
	}
}

func (s *session) run() error {
	if err := s.connect(); err != nil {
		return withStep(StepConnect, err)
	}
	if err := s.stream(); err != nil {
		return withStep(StepPublish, err)
	}
	if err := s.settle(); err != nil {
		return withStep(StepWaitAcks, err)
	}
	if err := s.awaitDownlink(); err != nil {
		return withStep(StepWaitAcks, err)
	}
	if err := s.disconnect(); err != nil {
		return withStep(StepDisconnect, err)
	}
	return nil
}

// connect writes CONNECT, pipelines a first chunk of safe records behind it
// and waits for CONNACK.
func (s *session) connect() error {
	c := codec.Connect{
		Version:     s.v,
		ClientID:    s.cfg.ClientID,
		CleanStart:  s.cfg.CleanStart,
		KeepAlive:   s.cfg.KeepAlive,
		HasUsername: s.cfg.Username != "",
		Username:    s.cfg.Username,
		HasPassword: s.cfg.Password != nil,
		Password:    s.cfg.Password,
		Will:        s.cfg.Will,
	}
	if s.v == codec.V5 {
		c.MaximumPacketSize = maxInboundPacket
		c.SessionExpiryInterval = s.cfg.Downlink.SessionExpiry
		c.ReceiveMaximum = s.cfg.Downlink.ReceiveMaximum
	}
	var err error
	if s.out, err = codec.AppendConnect(s.out, &c); err != nil {
		return fmt.Errorf("encode CONNECT: %w", err)
	}
	s.expectReply = true
	s.log.Debug("mqtt connect", "version", s.v.String(), "client_id", s.cfg.ClientID,
		"username", s.cfg.Username, "keepalive", s.cfg.KeepAlive)
	if !s.cfg.NoPipeline {
		if err := s.pipeline(); err != nil {
			return err
		}
	}
	for !s.connacked {
		if err := s.wait(); err != nil {
			return err
		}
	}
	if err := s.publishStatus(); err != nil {
		return err
	}
	return s.subscribe()
}

// pipelineMaxPacketV5 bounds each MQTT 5 PUBLISH sent before CONNACK: the
// broker's Maximum Packet Size is not known yet, and no real broker sets one
// this small. MQTT 3.1 and 3.1.1 have no such limit, so there only the first
// chunk bounds what goes ahead of CONNACK.
const pipelineMaxPacketV5 = 128

// PriorPipelineChunks is how many chunks may go ahead of CONNACK when the
// broker's limits are known from Config.Prior: enough to keep an NB-IoT
// uplink (2.5 kB/s, 1 s round trip) sending until the CONNACK is read,
// few enough that a login refused after all wastes little.
const PriorPipelineChunks = 4

// pipeline writes records behind CONNECT before the broker has answered:
// with Config.Prior, up to PriorPipelineChunks chunks within the limits the
// broker announced last time; without, the rest of the first chunk with
// records any broker accepts. It stops at the first record that does not
// qualify, so the order of records is kept.
func (s *session) pipeline() error {
	chunks := 1
	maxPacket := s.maxPacket
	if s.cfg.Prior != nil {
		chunks = PriorPipelineChunks
	} else if s.v == codec.V5 {
		maxPacket = pipelineMaxPacketV5
	}
	for {
		rec, ok, err := s.peek()
		if err != nil || !ok {
			return err
		}
		if rec.Strikes > 0 || (s.cfg.Prior == nil && (rec.QoS > 1 || rec.Retain)) ||
			(s.effectiveQoS(rec.QoS) > 0 && len(s.inflight) >= s.inflightMax) {
			return nil
		}
		p, err := s.buildPublish(rec)
		if err != nil {
			// Not sendable at all; the regular path skips it after CONNACK.
			return nil
		}
		if p == nil { // expired: publish counts it and sends nothing
			if err := s.publish(rec); err != nil {
				return err
			}
			continue
		}
		size, err := codec.PublishSize(s.v, p)
		// Everything written so far is CONNECT and pipelined records.
		// The last chunk ahead of CONNACK is the one that would overflow:
		// it goes out full when the session waits, not cut short.
		full := s.res.Writes >= chunks || (s.res.Writes == chunks-1 && len(s.out)+size > s.cfg.ChunkSize)
		if err != nil || (maxPacket > 0 && size > maxPacket) || full {
			return nil
		}
		if err := s.publish(rec); err != nil {
			return err
		}
	}
}

// stream sends every remaining record, keeping the in-flight window full and
// reading acknowledgements as they come.
func (s *session) stream() error {
	for {
		if err := s.poll(); err != nil {
			return err
		}
		rec, ok, err := s.peek()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if rec.Strikes > 0 {
			if err := s.isolate(rec); err != nil {
				return err
			}
			continue
		}
		if s.effectiveQoS(rec.QoS) > 0 && s.windowFull() {
			// Resume only once a chunk's worth is free (inflight.go).
			for !s.windowReopened() {
				if err := s.wait(); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.publish(rec); err != nil {
			return err
		}
	}
}

// settle obtains proof for everything written: PUBACK/PUBCOMP for QoS 1/2
// and PINGRESP for QoS 0.
func (s *session) settle() error {
	if len(s.qos0) > 0 {
		s.ping()
	}
	// An inbound QoS 2 exchange is finished too, or the broker resends
	// its PUBREL in the next window.
	for len(s.inflight) > 0 || len(s.pings) > 0 || len(s.inboundQoS2) > 0 || s.subPending() {
		if err := s.wait(); err != nil {
			return err
		}
	}
	return s.flushAcks()
}

func (s *session) disconnect() error {
	var err error
	if s.out, err = codec.AppendDisconnect(s.out, s.v, &codec.Disconnect{}); err != nil {
		return fmt.Errorf("encode DISCONNECT: %w", err)
	}
	return s.flushAll()
}

// ping queues a PINGREQ that proves delivery of the QoS 0 records written
// before it: TCP keeps order, so its PINGRESP means the broker read them.
func (s *session) ping() {
	s.out = codec.AppendPingreq(s.out)
	if len(s.qos0) > 0 {
		s.expectReply = true
	}
	s.pings = append(s.pings, s.qos0)
	s.qos0 = nil
}
