package uplink

import (
	"context"
	"encoding/json"
	"runtime/debug"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// StatusRecord is the retained message every window publishes on
// Config.StatusTopic right after CONNACK, so the back end knows each
// site's health and when it will next be heard, even when the window fails
// later. Field names are stable (README, "Status messages").
type StatusRecord struct {
	ClientID string    `json:"client_id"`
	Version  string    `json:"version"`
	At       time.Time `json:"at"`
	// State is "connected" in the record sent by a window, "lost" in the
	// will the broker publishes when a window ends without DISCONNECT.
	State string `json:"state"`

	PreviousWindow *PreviousWindow `json:"previous_window,omitempty"`

	QueueDepth       int64    `json:"queue_depth"`
	OldestAgeSeconds *float64 `json:"oldest_age_seconds,omitempty"`
	Dropped          uint64   `json:"dropped"`
	Expired          uint64   `json:"expired"`
	Quarantined      int64    `json:"quarantined"`
	Rejected         uint64   `json:"rejected"`
	// Deferred windows (Config.MinCSQ, MinVoltageMV): since the last window
	// that ran, and ever.
	Deferred      uint64 `json:"deferred"`
	DeferredTotal uint64 `json:"deferred_total"`

	// This window so far (up to CONNACK) and this calendar month before it.
	Window Usage `json:"window"`
	Month  Usage `json:"month"`

	CSQ      int    `json:"csq,omitempty"` // 0-31; absent when unknown
	RSRP     *int   `json:"rsrp_dbm,omitempty"`
	RSRQ     *int   `json:"rsrq_db,omitempty"`
	SINR     *int   `json:"sinr_db,omitempty"`
	Cell     string `json:"cell,omitempty"` // "<system> <MCC-MNC> <TAC> <cell id> <band>"
	SupplyMV int    `json:"supply_mv,omitempty"`

	NextContact *time.Time `json:"next_contact,omitempty"`

	// Inbox is the downlink inbox (with --subscribe, or while it holds
	// messages).
	Inbox *InboxStatus `json:"inbox,omitempty"`
}

// InboxStatus is the inbox's part of the status record.
type InboxStatus struct {
	Messages     int64  `json:"messages"`      // waiting for the hook or inbox ack
	Bytes        int64  `json:"bytes"`         // their topic+payload bytes
	Received     uint64 `json:"received"`      // stored, ever
	Refused      uint64 `json:"refused"`       // refused because the inbox was full, ever
	HookFailures uint64 `json:"hook_failures"` // failed hook runs, ever
	// The previous window's downlink.
	LastWindowMessages int   `json:"last_window_messages"`
	LastWindowBytes    int64 `json:"last_window_bytes"`
}

// PreviousWindow is what the last window that ran left in the queue file.
type PreviousWindow struct {
	Outcome        string    `json:"outcome"`
	Step           string    `json:"step,omitempty"`
	Class          string    `json:"class,omitempty"`
	End            time.Time `json:"end"`
	Acked          int       `json:"acked"`
	RadioOnSeconds float64   `json:"radio_on_seconds"`
}

// Usage counts MQTT bytes, estimated air bytes and radio time.
type Usage struct {
	Month          string  `json:"month,omitempty"` // "2026-12" for the month's counter
	Windows        int     `json:"windows,omitempty"`
	MQTTBytesOut   int64   `json:"mqtt_bytes_out"`
	MQTTBytesIn    int64   `json:"mqtt_bytes_in"`
	AirBytes       int64   `json:"air_bytes_estimate"`
	RadioOnSeconds float64 `json:"radio_on_seconds"`
}

// tcpIPHeader is an IPv4 + TCP header without options; NB-IoT carries it
// uncompressed unless the network does ROHC.
const tcpIPHeader = 40

// airEstimate is the TCP/IP model of what MQTT bytes cost on the air: each
// segment (at most 1,460 bytes, one per AT+CIPSEND chunk up) carries a
// 40-byte header and is acknowledged by a 40-byte segment the other way,
// and opening and closing the connection take 7 segments.
func airEstimate(out, in int64, chunksUp int) int64 {
	segsUp := max(int64(chunksUp), (out+1459)/1460)
	segsDown := (in + 1459) / 1460
	return out + in + 2*tcpIPHeader*(segsUp+segsDown) + 7*tcpIPHeader
}

// usageNote is the queue note of the month's usage.
const usageNote = "usage-month"

// addUsage adds one window that brought the radio up to the month's
// counter, starting a new one when the month changed.
func addUsage(q *queue.Queue, s *Summary) error {
	month := s.Start.UTC().Format("2006-01")
	return q.UpdateNote(usageNote, func(old []byte) ([]byte, error) {
		var u Usage
		if len(old) > 0 {
			_ = json.Unmarshal(old, &u) // a damaged counter restarts
		}
		if u.Month != month {
			u = Usage{Month: month}
		}
		u.Windows++
		u.MQTTBytesOut += s.MQTTBytesOut
		u.MQTTBytesIn += s.MQTTBytesIn
		u.AirBytes += airEstimate(s.MQTTBytesOut, s.MQTTBytesIn, s.Chunks)
		u.RadioOnSeconds += s.RadioOnSeconds
		return json.Marshal(u)
	})
}

// MonthUsage returns this month's usage stored in q (zero in a new month).
func MonthUsage(q *queue.Queue, now time.Time) (Usage, error) {
	var u Usage
	data, err := q.Note(usageNote)
	if err != nil || len(data) == 0 {
		return Usage{Month: now.UTC().Format("2006-01")}, err
	}
	if err := json.Unmarshal(data, &u); err != nil || u.Month != now.UTC().Format("2006-01") {
		return Usage{Month: now.UTC().Format("2006-01")}, nil
	}
	return u, nil
}

// softwareVersion is the module version the binary was built from.
func softwareVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// statusBase is the part of the status record known before the window
// connects: the queue, the previous window, the month, the next contact.
func (w *window) statusBase(st queue.Stats) StatusRecord {
	now := time.Now().UTC()
	r := StatusRecord{
		ClientID: w.cfg.ClientID, Version: softwareVersion(), At: now, State: "connected",
		QueueDepth: st.Depth, Dropped: st.Dropped, Expired: st.Expired,
		Quarantined: st.Quarantined, Rejected: st.Rejected,
	}
	if !st.Oldest.IsZero() {
		age := now.Sub(st.Oldest).Seconds()
		r.OldestAgeSeconds = &age
	}
	if raw, err := w.q.WindowSummary(); err == nil {
		if prev, err := ParseSummary(raw); err == nil && prev != nil {
			r.PreviousWindow = &PreviousWindow{Outcome: prev.Outcome, Step: prev.Step, Class: prev.Class, End: prev.End,
				Acked: prev.Acked, RadioOnSeconds: prev.RadioOnSeconds}
		}
	}
	if u, err := MonthUsage(w.q, now); err == nil {
		r.Month = u
	}
	if d, err := ReadDeferrals(w.q); err == nil {
		r.Deferred, r.DeferredTotal = d.Streak, d.Total
	}
	if w.cfg.NextContact != nil {
		next := w.cfg.NextContact().UTC()
		r.NextContact = &next
	}
	r.Inbox = w.inboxStatus()
	return r
}

// statusMessage is the session's Config.Status: the record, completed with
// what the window learnt of the link and the bytes so far.
func (w *window) statusMessage(base StatusRecord) func(session.StatusContext) *session.Message {
	return func(sc session.StatusContext) *session.Message {
		r := base
		r.At = time.Now().UTC()
		if w.sum.CSQ >= 0 && w.sum.CSQ <= 31 {
			r.CSQ = w.sum.CSQ
		}
		r.RSRP, r.RSRQ, r.SINR, r.Cell, r.SupplyMV = w.link.rsrp, w.link.rsrq, w.link.sinr, w.link.cell, w.link.supplyMV
		r.Window = Usage{MQTTBytesOut: sc.BytesOut, MQTTBytesIn: sc.BytesIn,
			AirBytes: airEstimate(sc.BytesOut, sc.BytesIn, 1), RadioOnSeconds: w.radioOnSoFar()}
		payload, err := json.Marshal(r)
		if err != nil {
			w.log.Warn("status record not encodable", "err", err)
			return nil
		}
		return &session.Message{Topic: w.cfg.StatusTopic, Payload: payload, Retain: true}
	}
}

// will is the retained message the broker publishes on Config.WillTopic if
// this window's connection ends without a clean DISCONNECT; the next
// window's status record overwrites it.
func (w *window) will(base StatusRecord) *codec.Will {
	if w.cfg.WillTopic == "" {
		return nil
	}
	r := StatusRecord{ClientID: base.ClientID, Version: base.Version, At: base.At, State: "lost",
		QueueDepth: base.QueueDepth, NextContact: base.NextContact}
	payload, err := json.Marshal(r)
	if err != nil {
		return nil
	}
	return &codec.Will{Topic: w.cfg.WillTopic, Payload: payload, QoS: 1, Retain: true}
}

// linkFacts is what the window learnt of the radio link for the status
// record.
type linkFacts struct {
	rsrp, rsrq, sinr *int
	cell             string
	supplyMV         int
}

// readLinkFacts asks the module for the serving cell and its supply; both
// are optional (a module or firmware without them answers ERROR), and they
// are only asked when a status record will carry them.
func (w *window) readLinkFacts(ctx context.Context, h *Modem) {
	if w.cfg.StatusTopic == "" {
		return
	}
	if ci, err := h.CellInfo(ctx); err == nil {
		w.link.rsrp, w.link.rsrq, w.link.sinr = ci.RSRP, ci.RSRQ, ci.SINR
		if ci.Operator != "" {
			w.link.cell = ci.System + " " + ci.Operator + " " + ci.TAC + " " + ci.CellID + " " + ci.Band
		}
	} else {
		w.log.Debug("no cell information", "err", err)
	}
}

// readSupply reads the module's supply before the radio goes on (AT+CBC
// needs no network), for the status record and the supply gate.
func (w *window) readSupply(ctx context.Context, h *Modem) error {
	if w.cfg.StatusTopic == "" && w.cfg.MinVoltageMV <= 0 {
		return nil
	}
	mv, err := h.SupplyVoltage(ctx)
	if err != nil {
		w.log.Debug("no supply voltage", "err", err)
		return nil // a module without AT+CBC is not gated
	}
	w.link.supplyMV = mv
	return w.gate("supply mV", mv, w.cfg.MinVoltageMV)
}
