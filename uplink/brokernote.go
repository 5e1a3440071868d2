package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// brokerNote keeps what the broker announced in the CONNACK with which it
// last accepted this site. The next window's session takes those limits as
// known before its own CONNACK arrives, so it keeps the radio sending
// through that round trip instead of idling after one chunk
// (session.Config.Prior). The note holds for one broker address, TLS
// setting, MQTT version, client id and user name: change any of them and
// the next window is careful again. A refused login forgets it, so a
// misconfigured site wastes at most one chunk per window.
const brokerNote = "broker"

// brokerMemory is the stored form of brokerNote.
type brokerMemory struct {
	For               string    `json:"for"` // brokerKey of the window that stored it
	ReceiveMaximum    uint16    `json:"receive_maximum,omitempty"`
	TopicAliasMaximum uint16    `json:"topic_alias_maximum,omitempty"`
	MaximumPacketSize uint32    `json:"maximum_packet_size,omitempty"`
	MaximumQoS        *byte     `json:"maximum_qos,omitempty"`
	RetainAvailable   bool      `json:"retain_available"`
	At                time.Time `json:"at"`
}

// brokerKey names what a remembered CONNACK belongs to. The password is
// left out on purpose: it is a secret, and a changed one that the broker
// refuses makes the window forget the note anyway.
func (w *window) brokerKey() string {
	return fmt.Sprintf("%s tls=%t mqtt=%s client=%q user=%q",
		w.cfg.Broker, w.cfg.TLS.Enabled, w.cfg.MQTTVersion, w.cfg.ClientID, w.cfg.Username)
}

// priorConnack is the remembered CONNACK for this window's broker and
// login, or nil. An unreadable note only costs the round trip it saves.
func (w *window) priorConnack() *codec.Connack {
	data, err := w.q.Note(brokerNote)
	if err != nil || len(data) == 0 {
		if err != nil {
			w.log.Debug("broker note unreadable; waiting for CONNACK", "err", err)
		}
		return nil
	}
	var m brokerMemory
	if err := json.Unmarshal(data, &m); err != nil {
		w.log.Debug("broker note unreadable; waiting for CONNACK", "err", err)
		return nil
	}
	if m.For != w.brokerKey() {
		return nil
	}
	c := &codec.Connack{
		ReceiveMaximum:    m.ReceiveMaximum,
		TopicAliasMaximum: m.TopicAliasMaximum,
		MaximumPacketSize: m.MaximumPacketSize,
		RetainAvailable:   m.RetainAvailable,
	}
	if m.MaximumQoS != nil {
		c.HasMaximumQoS, c.MaximumQoS = true, *m.MaximumQoS
	}
	w.log.Debug("broker limits known from its last CONNACK; records go ahead of this one",
		"since", m.At, "receive_maximum", m.ReceiveMaximum, "topic_alias_maximum", m.TopicAliasMaximum,
		"maximum_packet_size", m.MaximumPacketSize)
	return c
}

// rememberBroker stores the CONNACK of a session the broker accepted, or
// forgets the note when it refused the login.
func (w *window) rememberBroker(res session.Result, err error) {
	var data []byte
	var refused *session.RefusedError
	switch {
	case res.Connected:
		c := res.Connack
		m := brokerMemory{
			For:               w.brokerKey(),
			ReceiveMaximum:    c.ReceiveMaximum,
			TopicAliasMaximum: c.TopicAliasMaximum,
			MaximumPacketSize: c.MaximumPacketSize,
			RetainAvailable:   c.RetainAvailable || w.cfg.MQTTVersion != codec.V5,
			At:                time.Now().UTC(),
		}
		if c.HasMaximumQoS {
			m.MaximumQoS = &c.MaximumQoS
		}
		if data, err = json.Marshal(m); err != nil {
			w.log.Warn("could not remember the broker's limits", "err", err)
			return
		}
	case errors.As(err, &refused):
		// data stays nil: the note is deleted.
	default:
		return // no CONNACK: what was known still holds
	}
	if uerr := w.q.UpdateNote(brokerNote, func([]byte) ([]byte, error) { return data, nil }); uerr != nil {
		w.log.Warn("could not update the broker note; the next window may wait for CONNACK", "err", uerr)
	}
}
