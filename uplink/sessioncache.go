package uplink

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nbiot-uploader/uploader/queue"
)

// TLS session resumption across windows.
//
// A full TLS 1.3 handshake with mutual TLS sends the server's certificate
// chain down and the client certificate and its CertificateVerify up, in
// every window. The server hands the client a session ticket after the
// handshake; offered in the next window's ClientHello, it replaces all of
// that with a pre-shared key (still with a fresh ECDHE exchange, so
// forward secrecy holds). The ticket lives in a queue note between
// windows: a process per window has no memory of its own.
//
// The note is a secret: with the ticket and its resumption secret anyone
// could resume the session as this site until the ticket expires. It sits
// in the queue file, which therefore needs the same protection as the key
// file (README, TLS). It is never logged.

// tlsSessionNote names the queue note holding the stored session.
const tlsSessionNote = "tls-session"

// sessionNoteMagic starts a stored session and versions its layout:
//
//	magic[4] | scope key[32] | sha256 of what follows[32] |
//	ticket length uint16 (big endian) | ticket | tls.SessionState.Bytes()
var sessionNoteMagic = [4]byte{'u', 't', 's', '1'}

const sessionNoteHeader = len(sessionNoteMagic) + 2*sha256.Size + 2

// errSessionNote is a stored session that cannot be used: damaged, of
// another layout, or not a client session.
var errSessionNote = errors.New("stored TLS session unusable")

// sessionNote is a decoded stored session.
type sessionNote struct {
	key    [sha256.Size]byte // scope and Go's cache key (noteSessionCache.key)
	ticket []byte            // the server's ticket, sent back as is
	state  []byte            // tls.SessionState.Bytes() of the client
}

// encode lays the note out; ticket must fit 16 bits (a TLS ticket does).
func (n sessionNote) encode() ([]byte, error) {
	if len(n.ticket) > 0xffff {
		return nil, fmt.Errorf("%w: ticket of %d bytes", errSessionNote, len(n.ticket))
	}
	body := make([]byte, 0, 2+len(n.ticket)+len(n.state))
	body = binary.BigEndian.AppendUint16(body, uint16(len(n.ticket)))
	body = append(body, n.ticket...)
	body = append(body, n.state...)
	sum := sha256.Sum256(body)
	out := make([]byte, 0, sessionNoteHeader-2+len(body))
	out = append(out, sessionNoteMagic[:]...)
	out = append(out, n.key[:]...)
	out = append(out, sum[:]...)
	return append(out, body...), nil
}

// decodeSessionNote parses a stored session. The checksum catches a
// damaged note, which would otherwise be offered to the server with a
// wrong secret and fail the handshake (an invalid PSK binder is fatal).
func decodeSessionNote(data []byte) (sessionNote, error) {
	var n sessionNote
	if len(data) < sessionNoteHeader {
		return n, fmt.Errorf("%w: %d bytes, shorter than its header", errSessionNote, len(data))
	}
	if !bytes.Equal(data[:len(sessionNoteMagic)], sessionNoteMagic[:]) {
		return n, fmt.Errorf("%w: unknown layout", errSessionNote)
	}
	rest := data[len(sessionNoteMagic):]
	copy(n.key[:], rest[:sha256.Size])
	rest = rest[sha256.Size:]
	sum, body := rest[:sha256.Size], rest[sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(sum, got[:]) {
		return n, fmt.Errorf("%w: checksum mismatch", errSessionNote)
	}
	tlen := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if tlen == 0 || tlen > len(body) {
		return n, fmt.Errorf("%w: ticket of %d bytes in %d", errSessionNote, tlen, len(body))
	}
	n.ticket = bytes.Clone(body[:tlen])
	n.state = bytes.Clone(body[tlen:])
	return n, nil
}

// resumptionState turns a stored session back into what crypto/tls
// resumes. Only a client session will do: SessionState.Bytes() marks it
// with a 2 after the version, and tls.ParseSessionState then guarantees
// the server certificates crypto/tls checks before it resumes (expiry,
// host name, a chain to the current roots).
func (n sessionNote) resumptionState() (*tls.ClientSessionState, error) {
	if len(n.state) < 3 || n.state[2] != 2 {
		return nil, fmt.Errorf("%w: not a client session", errSessionNote)
	}
	state, err := tls.ParseSessionState(n.state)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSessionNote, err)
	}
	cs, err := tls.NewResumptionState(n.ticket, state)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSessionNote, err)
	}
	return cs, nil
}

// sessionScope digests what a session was made with, so that one stored
// for another broker, server name, CA bundle or client certificate is
// never offered: crypto/tls keys sessions by server name alone, and a
// resumed session skips the client certificate.
func sessionScope(broker, serverName string, caPEM []byte, certs []tls.Certificate) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte("uploader tls session scope v1"))
	field([]byte(broker))
	field([]byte(serverName))
	if caPEM == nil {
		field([]byte("system roots"))
	} else {
		field([]byte("ca file"))
		field(caPEM)
	}
	for _, c := range certs {
		field([]byte("client chain"))
		for _, der := range c.Certificate {
			field(der)
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// noteSessionCache is a tls.ClientSessionCache holding one session in a
// queue note; one per window. Get runs in the handshake. Put runs when a
// ticket arrives: in TLS 1.3 after the handshake, from the session's
// first reads (the ticket comes ahead of CONNACK). It stores the first
// ticket of the connection with one small note update and ignores the
// others (OpenSSL sends two): one bbolt transaction, a few hundred bytes
// to a few KB (the server's chain is part of the state), on the session's
// read path once per window. Storing at once rather than after the
// session keeps the ticket even when the window dies later, and keeps
// the code within the handshake's reach.
type noteSessionCache struct {
	q     *queue.Queue
	scope [sha256.Size]byte
	log   *slog.Logger

	mu     sync.Mutex
	stored bool // a ticket of this connection is in the note
}

func newNoteSessionCache(q *queue.Queue, scope [sha256.Size]byte, log *slog.Logger) *noteSessionCache {
	return &noteSessionCache{q: q, scope: scope, log: log}
}

// key binds the scope to crypto/tls's own cache key (the server name).
func (c *noteSessionCache) key(cacheKey string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(c.scope[:])
	h.Write([]byte(cacheKey))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Get returns the stored session when it was made for this broker,
// server name, CA and client certificate. Anything else — no note, a
// damaged one, one for other settings — is a miss: the handshake is then
// a full one and its ticket replaces the note.
func (c *noteSessionCache) Get(cacheKey string) (*tls.ClientSessionState, bool) {
	data, err := c.q.Note(tlsSessionNote)
	if err != nil {
		c.log.Debug("stored TLS session not read; full handshake", "err", err)
		return nil, false
	}
	if data == nil {
		return nil, false
	}
	n, err := decodeSessionNote(data)
	if err != nil {
		c.log.Debug("stored TLS session ignored; full handshake", "err", err)
		return nil, false
	}
	if n.key != c.key(cacheKey) {
		c.log.Debug("stored TLS session is for another broker, server name, CA or client certificate; full handshake")
		return nil, false
	}
	cs, err := n.resumptionState()
	if err != nil {
		c.log.Debug("stored TLS session ignored; full handshake", "err", err)
		return nil, false
	}
	return cs, true
}

// Put stores the connection's first ticket, or, for nil (crypto/tls drops
// a session that expired or failed), deletes the stored one if it is ours.
func (c *noteSessionCache) Put(cacheKey string, cs *tls.ClientSessionState) {
	key := c.key(cacheKey)
	if cs == nil {
		err := c.q.UpdateNote(tlsSessionNote, func(old []byte) ([]byte, error) {
			if n, err := decodeSessionNote(old); err == nil && n.key != key {
				return old, nil
			}
			return nil, nil
		})
		if err != nil {
			c.log.Warn("could not drop the stored TLS session", "err", err)
		}
		return
	}
	c.mu.Lock()
	if c.stored {
		c.mu.Unlock()
		return
	}
	c.stored = true
	c.mu.Unlock()
	ticket, state, err := cs.ResumptionState()
	if err != nil || state == nil {
		c.log.Debug("TLS session ticket not stored", "err", err)
		return
	}
	sb, err := state.Bytes()
	if err != nil {
		c.log.Debug("TLS session ticket not stored", "err", err)
		return
	}
	data, err := sessionNote{key: key, ticket: ticket, state: sb}.encode()
	if err == nil {
		err = c.q.UpdateNote(tlsSessionNote, func([]byte) ([]byte, error) { return data, nil })
	}
	if err != nil {
		c.log.Warn("could not store the TLS session ticket; the next window does a full handshake", "err", err)
		return
	}
	c.log.Debug("TLS session ticket stored for the next window", "bytes", len(data))
}

// dropStoredSession deletes a stored session that NoResume leaves unused,
// so that no secret lies in the queue file for nothing. Without one it
// only reads.
func dropStoredSession(q *queue.Queue, log *slog.Logger) {
	if data, err := q.Note(tlsSessionNote); err != nil || data == nil {
		return
	}
	if err := q.UpdateNote(tlsSessionNote, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		log.Warn("could not delete the stored TLS session", "err", err)
		return
	}
	log.Debug("stored TLS session deleted (--tls-no-resume)")
}
