package codec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Packet is one decoded control packet. Only the field named for Type is
// meaningful; the others are zero.
type Packet struct {
	Type  PacketType
	Flags byte // low nibble of the fixed header
	Size  int  // total bytes of this packet on the wire

	Connect     Connect     // TypeConnect
	Connack     Connack     // TypeConnack
	Publish     Publish     // TypePublish
	Ack         Ack         // TypePuback, TypePubrec, TypePubrel, TypePubcomp; PacketID also for TypeUnsuback
	Suback      Suback      // TypeSuback, and TypeUnsuback (MQTT 5 reason codes)
	Subscribe   Subscribe   // TypeSubscribe
	Unsubscribe Unsubscribe // TypeUnsubscribe
	Disconnect  Disconnect  // TypeDisconnect
	Auth        Auth        // TypeAuth
}

// Decoder reads packets from one connection's byte stream.
type Decoder struct {
	r       *bufio.Reader
	version Version
	max     int
	buf     []byte // body of the current packet; never longer than max
	pkt     Packet
	will    Will  // storage for pkt.Connect.Will
	err     error // framing failure: the stream position inside a packet is lost
}

// NewDecoder returns a decoder reading from r, which it wraps in a
// bufio.Reader unless r already is one. v is the connection's protocol
// level, used for every packet except CONNECT, which carries its own.
// Packets larger in total than maxPacketSize bytes are refused with
// ErrPacketTooLarge before their body is read; a maxPacketSize of zero or
// less, or above MaxPacketSize, means MaxPacketSize.
func NewDecoder(r io.Reader, v Version, maxPacketSize int) *Decoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if maxPacketSize <= 0 || maxPacketSize > MaxPacketSize {
		maxPacketSize = MaxPacketSize
	}
	return &Decoder{r: br, version: v, max: maxPacketSize}
}

// SetVersion changes the protocol level used for the following packets, as a
// broker does once it has read the client's CONNECT.
func (d *Decoder) SetVersion(v Version) { d.version = v }

// Version returns the protocol level the decoder currently uses.
func (d *Decoder) Version() Version { return d.version }

// initialChunk bounds how much the decoder reserves for a body before the
// bytes have arrived, so a forged length costs memory only as data comes in.
const initialChunk = 64 << 10

// Next reads exactly one packet. At a clean packet boundary with no more
// input it returns io.EOF itself. The returned *Packet and every slice inside
// it are valid only until the next call to Next.
//
// A packet whose bytes were read in full but break the protocol yields an
// error wrapping ErrMalformedPacket (or ErrUnsupportedVersion for a CONNECT)
// and leaves the stream at the next packet. Failures that lose the packet
// boundary (ErrTruncated, ErrMalformedLength, ErrPacketTooLarge, or a read
// error after the first byte of a packet) are returned again by every later
// call.
func (d *Decoder) Next() (*Packet, error) {
	if d.err != nil {
		return nil, d.err
	}
	first, err := d.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read fixed header: %w", err)
	}
	remaining, lenBytes, err := d.readRemainingLength()
	if err != nil {
		d.err = err
		return nil, err
	}
	t := PacketType(first >> 4)
	size := 1 + lenBytes + remaining
	if size > d.max {
		d.err = fmt.Errorf("%s of %d bytes exceeds maximum %d: %w", t, size, d.max, ErrPacketTooLarge)
		return nil, d.err
	}
	body, err := d.readBody(remaining)
	if err != nil {
		d.err = fmt.Errorf("read %s body: %w", t, err)
		return nil, d.err
	}
	d.reset()
	p := &d.pkt
	p.Type, p.Flags, p.Size = t, first&0x0f, size
	if err := d.decodeBody(p, body); err != nil {
		return nil, fmt.Errorf("decode %s: %w", t, err)
	}
	return p, nil
}

// readRemainingLength reads the variable byte integer of the fixed header
// [MQTT-1.5.5], allowing non-minimal encodings but at most four bytes.
func (d *Decoder) readRemainingLength() (value, n int, err error) {
	for n < 4 {
		b, err := d.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, 0, errTruncated("remaining length")
			}
			return 0, 0, fmt.Errorf("read remaining length: %w", err)
		}
		value |= int(b&0x7f) << (7 * n)
		n++
		if b&0x80 == 0 {
			return value, n, nil
		}
	}
	return 0, 0, fmt.Errorf("remaining length longer than 4 bytes: %w", ErrMalformedLength)
}

// readBody fills the decoder's buffer with n bytes. The buffer grows with
// the data actually received, never beyond n, which the caller has checked
// against the maximum packet size.
func (d *Decoder) readBody(n int) ([]byte, error) {
	if n <= cap(d.buf) {
		d.buf = d.buf[:n]
		if _, err := io.ReadFull(d.r, d.buf); err != nil {
			return nil, readErr(err)
		}
		return d.buf, nil
	}
	d.buf = d.buf[:0]
	for len(d.buf) < n {
		chunk := min(n-len(d.buf), max(len(d.buf), initialChunk))
		start := len(d.buf)
		if cap(d.buf)-start < chunk {
			grown := make([]byte, start, min(n, max(2*cap(d.buf), start+chunk)))
			copy(grown, d.buf)
			d.buf = grown
		}
		d.buf = d.buf[:start+chunk]
		if _, err := io.ReadFull(d.r, d.buf[start:]); err != nil {
			return nil, readErr(err)
		}
	}
	return d.buf, nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated("packet body")
	}
	return err
}

// reset clears what the previous packet set, keeping the capacity of its
// slices, so a stream of packets of one shape stops allocating after the
// first. Only the field named by the previous Type can be non-zero: Next sets
// Type before decoding and every decoder writes only its own field.
func (d *Decoder) reset() {
	p := &d.pkt
	switch p.Type {
	case TypeConnect:
		p.Connect = Connect{UserProperties: p.Connect.UserProperties[:0]}
	case TypeConnack:
		p.Connack = Connack{UserProperties: p.Connack.UserProperties[:0]}
	case TypePublish:
		p.Publish = Publish{UserProperties: p.Publish.UserProperties[:0]}
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		p.Ack = Ack{UserProperties: p.Ack.UserProperties[:0]}
	case TypeSubscribe:
		p.Subscribe = Subscribe{Subscriptions: p.Subscribe.Subscriptions[:0], UserProperties: p.Subscribe.UserProperties[:0]}
	case TypeSuback, TypeUnsuback:
		p.Suback = Suback{UserProperties: p.Suback.UserProperties[:0]}
		p.Ack = Ack{UserProperties: p.Ack.UserProperties[:0]}
	case TypeUnsubscribe:
		p.Unsubscribe = Unsubscribe{Filters: p.Unsubscribe.Filters[:0], UserProperties: p.Unsubscribe.UserProperties[:0]}
	case TypeDisconnect:
		p.Disconnect = Disconnect{UserProperties: p.Disconnect.UserProperties[:0]}
	case TypeAuth:
		p.Auth = Auth{UserProperties: p.Auth.UserProperties[:0]}
	}
	p.Type, p.Flags, p.Size = 0, 0, 0
}

func (d *Decoder) decodeBody(p *Packet, body []byte) error {
	t := p.Type
	if t != TypePublish && p.Flags != t.fixedFlags() {
		return malformedf("fixed header flags 0x%X", p.Flags) // [MQTT-2.2.2-2]
	}
	v := d.version
	switch t {
	case TypeConnect:
		return decodeConnect(&p.Connect, &d.will, body)
	case TypeConnack:
		return decodeConnack(&p.Connack, v, body)
	case TypePublish:
		return decodePublish(&p.Publish, v, p.Flags, body)
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp:
		return decodeAck(&p.Ack, v, t, body)
	case TypeSubscribe:
		return decodeSubscribe(&p.Subscribe, v, body)
	case TypeSuback:
		return decodeSuback(&p.Suback, v, t, body)
	case TypeUnsubscribe:
		return decodeUnsubscribe(&p.Unsubscribe, v, body)
	case TypeUnsuback:
		err := decodeSuback(&p.Suback, v, t, body)
		p.Ack.PacketID = p.Suback.PacketID
		return err
	case TypePingreq, TypePingresp:
		if len(body) != 0 {
			return malformedf("%d bytes after %s", len(body), t)
		}
		return nil
	case TypeDisconnect:
		return decodeDisconnect(&p.Disconnect, v, body)
	case TypeAuth:
		if v != V5 {
			return malformedf("AUTH in MQTT %s", v)
		}
		return decodeAuth(&p.Auth, body)
	}
	return malformedf("reserved packet type 0") // [MQTT-2.2.1]
}
