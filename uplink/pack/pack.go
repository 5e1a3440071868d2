package pack

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// The format's constants (FORMAT.md).
const (
	// Magic opens every pack.
	Magic = "UPAK"
	// Version is the format version this package writes and reads.
	Version = 1
	// ContentType names the format in an MQTT 5 PUBLISH's Content Type.
	ContentType = "application/vnd.uploader.pack;v=1"

	headerLen  = 10 // magic, version, compression, body length
	trailerLen = 4  // CRC-32 of everything before it
	recordHead = 23 // seq, time, topic index, flags, payload length

	flagQoS    = 0x03
	flagRetain = 0x04
)

// Overhead is the bytes a pack adds around its body.
const Overhead = headerLen + trailerLen

// Compression is the method byte of the header: the numbers of ZIP.
type Compression byte

const (
	Stored  Compression = 0 // the body as is
	Deflate Compression = 8 // raw deflate (RFC 1951), no zlib or gzip wrapper
)

func (c Compression) String() string {
	switch c {
	case Stored:
		return "stored"
	case Deflate:
		return "deflate"
	}
	return fmt.Sprintf("compression(%d)", byte(c))
}

// MaxBody bounds the body a decoder accepts, so a hostile pack cannot make
// it allocate more (the body length is declared in the header and checked
// before any allocation).
const MaxBody = 64 << 20

// Limits of one pack's tables.
const (
	MaxTopics   = math.MaxUint16
	MaxReadings = math.MaxUint32
	MaxTopicLen = math.MaxUint16
	MaxPayload  = math.MaxUint32
)

// ErrCorrupt is wrapped by every Decode error: the pack is rejected whole.
var ErrCorrupt = errors.New("corrupt pack")

// ErrTooLarge is returned by the encoder for a pack it cannot represent.
var ErrTooLarge = errors.New("pack too large")

// Reading is one queued record inside a pack.
type Reading struct {
	Seq     uint64
	Time    time.Time // enqueue time, kept to the millisecond
	Topic   string
	QoS     byte
	Retain  bool
	Payload []byte
}

// Pack is a decoded pack.
type Pack struct {
	ClientID    string
	Compression Compression
	Readings    []Reading
}

// Encoder builds packs; it keeps its buffers and compressor between packs.
// Not safe for concurrent use. The zero value is ready.
type Encoder struct {
	body   []byte
	topics map[string]uint16
	order  []string
	zbuf   bytes.Buffer
	zw     *flate.Writer

	// Fit's two pack buffers: the longest fit so far and the next try.
	fit, try []byte
}

// Encode appends a pack holding rs, from clientID, to dst. With Deflate the
// body is deflated unless that would not make it smaller; then it is
// stored, so a pack of incompressible payloads costs its body plus
// Overhead.
func (e *Encoder) Encode(dst []byte, clientID string, rs []Reading, c Compression) ([]byte, error) {
	if c != Stored && c != Deflate {
		return dst, fmt.Errorf("encode pack: unknown compression %d", byte(c))
	}
	if err := e.buildBody(clientID, rs); err != nil {
		return dst, err
	}
	data := e.body
	if c == Deflate {
		z, err := e.deflate(e.body)
		if err != nil {
			return dst, err
		}
		if len(z) < len(e.body) {
			data = z
		} else {
			c = Stored
		}
	}
	start := len(dst)
	dst = append(dst, Magic...)
	dst = append(dst, Version, byte(c))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.body)))
	dst = append(dst, data...)
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
	return dst, nil
}

// Fit encodes a prefix of rs whose pack is at most maxBytes long, as long
// as it can find in a few tries, and returns the pack appended to dst and
// the prefix's length. It returns n == 0 (and no error) when not even
// rs[0] fits. hint, when positive, is the first length tried (the last
// pack's, say); each next try is scaled by how far the last one was from
// maxBytes, and Fit stops when a pack that fits is within 3 % of it.
func (e *Encoder) Fit(dst []byte, clientID string, rs []Reading, c Compression, maxBytes, hint int) ([]byte, int, error) {
	n := len(rs)
	if hint > 0 && hint < n {
		n = hint
	}
	lo, hi := 0, len(rs)+1 // the longest prefix known to fit, the shortest known not to
	for try := 0; try < 12 && n > lo && n < hi; try++ {
		out, err := e.Encode(e.try[:0], clientID, rs[:n], c)
		if err != nil {
			return dst, 0, err
		}
		size := len(out)
		scaled := int(float64(n) * float64(maxBytes) / float64(size) * 0.97)
		if size <= maxBytes {
			lo = n
			e.try, e.fit = e.fit, out // keep the fit; reuse the old one's buffer
			if scaled <= n {
				break
			}
			n = min(scaled, hi-1)
		} else {
			e.try = out
			hi = n
			n = max(lo+1, min(scaled, n-1))
		}
	}
	if lo == 0 {
		return dst, 0, nil
	}
	return append(dst, e.fit...), lo, nil
}

func (e *Encoder) buildBody(clientID string, rs []Reading) error {
	if len(clientID) > MaxTopicLen {
		return fmt.Errorf("encode pack: client id of %d bytes: %w", len(clientID), ErrTooLarge)
	}
	if uint64(len(rs)) > MaxReadings {
		return fmt.Errorf("encode pack: %d readings: %w", len(rs), ErrTooLarge)
	}
	if e.topics == nil {
		e.topics = make(map[string]uint16)
	}
	clear(e.topics)
	e.order = e.order[:0]
	for _, r := range rs {
		if _, ok := e.topics[r.Topic]; ok {
			continue
		}
		if len(e.order) == MaxTopics {
			return fmt.Errorf("encode pack: more than %d topics: %w", MaxTopics, ErrTooLarge)
		}
		if len(r.Topic) > MaxTopicLen {
			return fmt.Errorf("encode pack: topic of %d bytes: %w", len(r.Topic), ErrTooLarge)
		}
		e.topics[r.Topic] = uint16(len(e.order))
		e.order = append(e.order, r.Topic)
	}
	b := e.body[:0]
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.order)))
	for _, t := range e.order {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(rs)))
	for _, r := range rs {
		if r.QoS > 2 {
			return fmt.Errorf("encode pack: seq %d: QoS %d", r.Seq, r.QoS)
		}
		if uint64(len(r.Payload)) > MaxPayload {
			return fmt.Errorf("encode pack: seq %d: payload of %d bytes: %w", r.Seq, len(r.Payload), ErrTooLarge)
		}
		flags := r.QoS
		if r.Retain {
			flags |= flagRetain
		}
		b = binary.BigEndian.AppendUint64(b, r.Seq)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMilli()))
		b = binary.BigEndian.AppendUint16(b, e.topics[r.Topic])
		b = append(b, flags)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Payload)))
		b = append(b, r.Payload...)
	}
	if len(b) > MaxBody {
		e.body = b[:0]
		return fmt.Errorf("encode pack: body of %d bytes, at most %d: %w", len(b), MaxBody, ErrTooLarge)
	}
	e.body = b
	return nil
}

func (e *Encoder) deflate(body []byte) ([]byte, error) {
	e.zbuf.Reset()
	if e.zw == nil {
		zw, err := flate.NewWriter(&e.zbuf, flate.BestCompression)
		if err != nil {
			return nil, fmt.Errorf("encode pack: %w", err)
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.zbuf)
	}
	if _, err := e.zw.Write(body); err != nil {
		return nil, fmt.Errorf("encode pack: deflate: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("encode pack: deflate: %w", err)
	}
	return e.zbuf.Bytes(), nil
}

// Decode checks and decodes a whole pack. Any defect — a wrong magic or
// version, an unknown compression, a deflate stream that is cut short or
// followed by anything, a body of another length than declared, a CRC
// mismatch, a table that runs past the body or leaves bytes over — rejects
// the whole pack with an error wrapping ErrCorrupt. The readings' payloads
// are copies.
func Decode(b []byte) (*Pack, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < headerLen+trailerLen {
		return nil, bad("%d bytes, shorter than the %d of an empty pack", len(b), headerLen+trailerLen)
	}
	if string(b[:4]) != Magic {
		return nil, bad("magic %q, want %q", b[:4], Magic)
	}
	if b[4] != Version {
		return nil, bad("version %d, this decoder reads version %d", b[4], Version)
	}
	c := Compression(b[5])
	size := binary.BigEndian.Uint32(b[6:10])
	if size > MaxBody {
		return nil, bad("declared body of %d bytes, at most %d", size, MaxBody)
	}
	data := b[headerLen : len(b)-trailerLen]
	want := binary.BigEndian.Uint32(b[len(b)-trailerLen:])
	if got := crc32.ChecksumIEEE(b[:len(b)-trailerLen]); got != want {
		return nil, bad("CRC-32 %08x, trailer says %08x (damaged or cut short)", got, want)
	}
	var body []byte
	switch c {
	case Stored:
		body = data
	case Deflate:
		var err error
		body, err = inflate(data, int(size))
		if err != nil {
			return nil, bad("%v", err)
		}
	default:
		return nil, bad("unknown compression %d", byte(c))
	}
	if len(body) != int(size) {
		return nil, bad("body of %d bytes, header says %d", len(body), size)
	}
	p, err := parseBody(body)
	if err != nil {
		return nil, bad("%v", err)
	}
	p.Compression = c
	return p, nil
}

func inflate(data []byte, size int) ([]byte, error) {
	br := bytes.NewReader(data)
	zr := flate.NewReader(br)
	defer zr.Close()
	body := make([]byte, 0, size)
	buf := bytes.NewBuffer(body)
	n, err := io.Copy(buf, io.LimitReader(zr, int64(size)+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("deflate stream cut short")
		}
		return nil, fmt.Errorf("deflate stream: %w", err)
	}
	if n > int64(size) {
		return nil, fmt.Errorf("deflate stream longer than the declared %d bytes", size)
	}
	// The stream must have ended, and nothing may follow it.
	var one [1]byte
	if k, err := zr.Read(one[:]); k != 0 || err != io.EOF {
		return nil, errors.New("deflate stream does not end")
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the deflate stream", br.Len())
	}
	return buf.Bytes(), nil
}

// reader walks a body; the first overrun sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%s at body offset %d runs past the body's %d bytes", what, r.off, len(r.b))
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u16(what string) int {
	s := r.take(2, what)
	if s == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(s))
}

func parseBody(body []byte) (*Pack, error) {
	r := &reader{b: body}
	p := &Pack{}
	id := r.take(r.u16("client id length"), "client id")
	if r.err == nil && !utf8.Valid(id) {
		return nil, errors.New("client id is not UTF-8")
	}
	p.ClientID = string(id)
	nt := r.u16("topic count")
	topics := make([]string, 0, min(nt, len(body)/2+1))
	for i := 0; i < nt && r.err == nil; i++ {
		t := r.take(r.u16("topic length"), "topic")
		if r.err == nil && (len(t) == 0 || !utf8.Valid(t)) {
			return nil, fmt.Errorf("topic %d is empty or not UTF-8", i)
		}
		topics = append(topics, string(t))
	}
	nrb := r.take(4, "reading count")
	if r.err != nil {
		return nil, r.err
	}
	nr := binary.BigEndian.Uint32(nrb)
	if left := len(body) - r.off; uint64(nr) > uint64(left/recordHead) {
		return nil, fmt.Errorf("%d readings cannot fit the %d bytes left", nr, left)
	}
	p.Readings = make([]Reading, 0, nr)
	var prev uint64
	for i := uint32(0); i < nr; i++ {
		h := r.take(recordHead, "reading header")
		if h == nil {
			return nil, r.err
		}
		seq := binary.BigEndian.Uint64(h[0:8])
		ms := int64(binary.BigEndian.Uint64(h[8:16]))
		ti := int(binary.BigEndian.Uint16(h[16:18]))
		flags := h[18]
		n := binary.BigEndian.Uint32(h[19:23])
		if i > 0 && seq <= prev {
			return nil, fmt.Errorf("reading %d: seq %d does not follow %d", i, seq, prev)
		}
		prev = seq
		if ti >= len(topics) {
			return nil, fmt.Errorf("reading %d (seq %d): topic index %d, table has %d", i, seq, ti, len(topics))
		}
		if flags&^(flagQoS|flagRetain) != 0 || flags&flagQoS == 3 {
			return nil, fmt.Errorf("reading %d (seq %d): flags %#02x", i, seq, flags)
		}
		if uint64(n) > uint64(len(body)-r.off) {
			return nil, fmt.Errorf("reading %d (seq %d): payload of %d bytes runs past the body", i, seq, n)
		}
		pl := r.take(int(n), "payload")
		p.Readings = append(p.Readings, Reading{
			Seq:     seq,
			Time:    time.UnixMilli(ms).UTC(),
			Topic:   topics[ti],
			QoS:     flags & flagQoS,
			Retain:  flags&flagRetain != 0,
			Payload: bytes.Clone(pl),
		})
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("%d bytes after the last reading", len(body)-r.off)
	}
	return p, nil
}
