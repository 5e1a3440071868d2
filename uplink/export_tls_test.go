package uplink

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/nbiot-uploader/uploader/queue"
)

// TLSSessionNote is the queue note a window keeps its TLS session in.
const TLSSessionNote = tlsSessionNote

// TLSHandshake is a window's TLS handshake on conn, with the session
// stored in q (for the handshake byte benchmark).
func TLSHandshake(ctx context.Context, conn net.Conn, t TLSConfig, broker string, q *queue.Queue, log *slog.Logger) (*tls.Conn, error) {
	return t.handshake(ctx, conn, broker, q, log, false)
}

// RewriteTLSSession lets fn change the stored session's ticket and state
// and stores the result with a valid checksum, as only someone who can
// write the queue file could.
func RewriteTLSSession(q *queue.Queue, fn func(ticket, state []byte) (newTicket, newState []byte)) error {
	return q.UpdateNote(tlsSessionNote, func(old []byte) ([]byte, error) {
		n, err := decodeSessionNote(old)
		if err != nil {
			return nil, err
		}
		n.ticket, n.state = fn(n.ticket, n.state)
		return n.encode()
	})
}
