package session

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/nbiot-uploader/uploader/codec"
)

// maxInboundPacket bounds what the session accepts from the broker. A broker
// only sends acknowledgements, PINGRESP, DISCONNECT and (with a stored session)
// PUBLISH packets, none of which an uploader needs large; with MQTT 5 the
// broker is told this limit in CONNECT.
const maxInboundPacket = 64 << 10

// event is one decoded broker packet, copied out of the decoder so it stays
// valid after the next Decoder.Next.
type event struct {
	typ          codec.PacketType
	id           uint16
	reason       byte
	reasonString string
	qos          byte // inbound PUBLISH
	topic        string
	payload      []byte // a copy
	retain, dup  bool
	granted      []byte // SUBACK reason codes, a copy
	connack      codec.Connack
	disconnect   codec.Disconnect
	err          error // set on the last event; the channel is closed after it
}

// reader decodes broker packets on its own goroutine, so acknowledgements
// arrive while the writer loop blocks in conn.Write.
type reader struct {
	events  chan event
	stop    chan struct{}
	done    chan struct{}
	bytesIn atomic.Int64
}

func startReader(conn net.Conn, v codec.Version) *reader {
	r := &reader{
		events: make(chan event, 64),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go r.run(conn, v)
	return r
}

func (r *reader) run(conn net.Conn, v codec.Version) {
	defer close(r.done)
	defer close(r.events)
	// The buffer turns many small reads into few: on a modem every read is
	// an AT+CIPRXGET round trip over the UART.
	var connErr error
	br := bufio.NewReaderSize(countingReader{r: conn, n: &r.bytesIn, err: &connErr}, 2048)
	dec := codec.NewDecoder(br, v, maxInboundPacket)
	for {
		p, err := dec.Next()
		var ev event
		if err != nil {
			// The connection's own error says more than the decoder's
			// view of it, whichever way the decoder wrapped it.
			ev.err = readError(err, connErr)
		} else {
			ev = eventOf(p)
		}
		select {
		case r.events <- ev:
		case <-r.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func eventOf(p *codec.Packet) event {
	ev := event{typ: p.Type}
	switch p.Type {
	case codec.TypeConnack:
		ev.connack = p.Connack
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		ev.id = p.Ack.PacketID
		ev.reason = p.Ack.ReasonCode
		ev.reasonString = p.Ack.ReasonString
	case codec.TypePublish:
		ev.id = p.Publish.PacketID
		ev.qos = p.Publish.QoS
		ev.topic = p.Publish.Topic
		ev.payload = bytes.Clone(p.Publish.Payload)
		ev.retain, ev.dup = p.Publish.Retain, p.Publish.Dup
	case codec.TypeSuback:
		ev.id = p.Suback.PacketID
		ev.granted = bytes.Clone(p.Suback.ReasonCodes)
		ev.reasonString = p.Suback.ReasonString
	case codec.TypeUnsuback:
		ev.id = p.Suback.PacketID
	case codec.TypeDisconnect:
		ev.disconnect = p.Disconnect
		ev.disconnect.UserProperties = nil // may alias the decoder's buffer
	}
	return ev
}

// shutdown stops the goroutine: the past read deadline unblocks conn.Read.
func (r *reader) shutdown(conn net.Conn) {
	close(r.stop)
	_ = conn.SetReadDeadline(aLongTimeAgo)
	<-r.done
}

// countingReader counts bytes in and remembers the connection's last error
// other than io.EOF.
type countingReader struct {
	r   io.Reader
	n   *atomic.Int64
	err *error
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF {
		*c.err = err
	}
	return n, err
}

// readError classifies the error that ended the reader: a closed connection
// is ErrBrokerDisconnect, bytes the decoder rejected are ErrProtocol. connErr
// is what conn.Read last returned other than io.EOF.
func readError(decErr, connErr error) error {
	switch {
	case connErr != nil && isConnClosed(connErr):
		return fmt.Errorf("%w: read: %w", ErrBrokerDisconnect, connErr)
	case connErr != nil:
		return fmt.Errorf("receive: %w", connErr)
	case errors.Is(decErr, io.EOF):
		return fmt.Errorf("%w: connection closed", ErrBrokerDisconnect)
	case errors.Is(decErr, io.ErrUnexpectedEOF), errors.Is(decErr, codec.ErrTruncated):
		return fmt.Errorf("%w: connection closed inside a packet", ErrBrokerDisconnect)
	}
	return fmt.Errorf("%w: %w", ErrProtocol, decErr)
}

func isConnClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}
