package session

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
)

// flushFull writes every full chunk and keeps the rest. A chunk ends at the
// last packet boundary that fits, so no packet straddles two writes unless it
// is larger than a chunk by itself (then it is written alone, and the
// connection splits it). On a modem this matters beyond tidiness: if the
// host dies between two CIPSENDs, or after a prompt, the broker must not be
// holding half a packet that the next bytes the module hears (another
// process's AT probes) would complete into a corrupted PUBLISH.
func (s *session) flushFull() error {
	size := s.cfg.ChunkSize
	off := 0
	for len(s.out)-off >= size {
		end := off
		for end < len(s.out) {
			n := packetLen(s.out[end:])
			if end+n-off > size {
				break
			}
			end += n
		}
		if end == off {
			end = off + packetLen(s.out[off:])
		}
		if err := s.write(s.out[off:end]); err != nil {
			return err
		}
		off = end
	}
	if off > 0 {
		s.out = s.out[:copy(s.out, s.out[off:])]
		if len(s.out) == 0 {
			s.expectReply = false
		}
	}
	return nil
}

// packetLen is the length of the packet b starts with. b holds whole
// packets this session encoded, so the fixed header is well formed.
func packetLen(b []byte) int {
	remaining, n, err := codec.DecodeVarint(b[1:])
	if err != nil {
		return len(b) // unreachable for packets from codec
	}
	return 1 + n + remaining
}

// flushAll writes everything buffered, the last chunk partial.
func (s *session) flushAll() error {
	if err := s.flushFull(); err != nil {
		return err
	}
	if len(s.out) == 0 {
		return nil
	}
	if err := s.write(s.out); err != nil {
		return err
	}
	s.out = s.out[:0]
	s.expectReply = false
	return nil
}

// write makes one conn.Write, bounded by ReplyTimeout and the context.
func (s *session) write(b []byte) error {
	deadline := time.Now().Add(s.cfg.ReplyTimeout)
	if d, ok := s.ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	// Checked after setting the deadline: a cancellation that raced with
	// it has already made ctx.Err non-nil.
	if err := s.ctx.Err(); err != nil {
		return err
	}
	n, err := s.conn.Write(b)
	s.lastWrite = time.Now()
	if s.expectReply {
		s.progress = s.lastWrite
	}
	s.res.Writes++
	s.res.BytesOut += int64(n)
	if err != nil {
		return s.writeError(len(b), err)
	}
	return nil
}

// explainGrace is how long a failed write waits for the reader to deliver
// the broker's reason (a DISCONNECT, say) for closing the connection.
const explainGrace = 200 * time.Millisecond

func (s *session) writeError(n int, err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	t := time.NewTimer(min(explainGrace, s.cfg.ReplyTimeout))
	defer t.Stop()
	for {
		select {
		case ev, ok := <-s.rd.events:
			if herr := s.handle(ev, ok); herr != nil {
				return fmt.Errorf("write %d bytes: %w (the write: %w)", n, herr, err)
			}
			continue
		case <-t.C:
		}
		break
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("write %d bytes: %w: %w", n, ErrReplyTimeout, err)
	case isConnClosed(err):
		return fmt.Errorf("%w: write %d bytes: %w", ErrBrokerDisconnect, n, err)
	}
	return fmt.Errorf("write %d bytes: %w", n, err)
}
