package codec_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/codec"
)

// goldenCase is one record of testdata/golden/*.txt (format in its README).
type goldenCase struct {
	name         string
	file         string
	version      codec.Version
	raw          []byte
	max          int
	err          error
	nonCanonical bool
}

var sentinels = map[string]error{
	"ErrTopicEmpty":         codec.ErrTopicEmpty,
	"ErrTopicTooLong":       codec.ErrTopicTooLong,
	"ErrTopicInvalidUTF8":   codec.ErrTopicInvalidUTF8,
	"ErrTopicNullChar":      codec.ErrTopicNullChar,
	"ErrTopicWildcard":      codec.ErrTopicWildcard,
	"ErrTopicFilterInvalid": codec.ErrTopicFilterInvalid,
	"ErrInvalidQoS":         codec.ErrInvalidQoS,
	"ErrPacketIDZero":       codec.ErrPacketIDZero,
	"ErrPropertyNotAllowed": codec.ErrPropertyNotAllowed,
	"ErrPacketTooLarge":     codec.ErrPacketTooLarge,
	"ErrMalformedLength":    codec.ErrMalformedLength,
	"ErrTruncated":          codec.ErrTruncated,
	"ErrMalformedPacket":    codec.ErrMalformedPacket,
	"ErrStringTooLong":      codec.ErrStringTooLong,
	"ErrInvalidString":      codec.ErrInvalidString,
	"ErrUnsupportedVersion": codec.ErrUnsupportedVersion,
}

// parseHex decodes whitespace-separated hex bytes, where "XX*N" repeats XX.
func parseHex(s string) ([]byte, error) {
	var out []byte
	for _, f := range strings.Fields(s) {
		n := 1
		if b, count, ok := strings.Cut(f, "*"); ok {
			var err error
			if n, err = strconv.Atoi(count); err != nil {
				return nil, err
			}
			f = b
		}
		v, err := hex.DecodeString(f)
		if err != nil || len(v) != 1 {
			return nil, errors.New("bad hex byte " + f)
		}
		out = append(out, bytes.Repeat(v, n)...)
	}
	return out, nil
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	var cases []goldenCase
	seen := map[string]bool{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var cur *goldenCase
		flush := func() {
			if cur == nil {
				return
			}
			if cur.name == "" || seen[cur.name] || cur.raw == nil || cur.version == 0 {
				t.Fatalf("%s: incomplete or duplicate record %+v", file, *cur)
			}
			seen[cur.name] = true
			cases = append(cases, *cur)
			cur = nil
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				flush()
				continue
			}
			if strings.HasPrefix(line, "#") {
				continue
			}
			if cur == nil {
				cur = &goldenCase{file: filepath.Base(file)}
			}
			key, val, _ := strings.Cut(line, " ")
			val = strings.TrimSpace(val)
			switch key {
			case "name":
				cur.name = val
			case "version":
				if cur.version, err = codec.ParseVersion(val); err != nil {
					t.Fatalf("%s: %v", file, err)
				}
			case "hex":
				b, err := parseHex(val)
				if err != nil {
					t.Fatalf("%s %s: %v", file, cur.name, err)
				}
				cur.raw = append(cur.raw, b...)
			case "max":
				if cur.max, err = strconv.Atoi(val); err != nil {
					t.Fatalf("%s %s: %v", file, cur.name, err)
				}
			case "error":
				if cur.err = sentinels[val]; cur.err == nil {
					t.Fatalf("%s %s: unknown sentinel %q", file, cur.name, val)
				}
			case "canonical":
				cur.nonCanonical = val == "no"
			default:
				t.Fatalf("%s: unknown key %q", file, key)
			}
		}
		flush()
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return cases
}

func goldenByName(t *testing.T, name string) goldenCase {
	t.Helper()
	for _, c := range loadGolden(t) {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no golden vector %q", name)
	return goldenCase{}
}

func decodeOne(t *testing.T, v codec.Version, raw []byte) *codec.Packet {
	t.Helper()
	p, err := codec.NewDecoder(bytes.NewReader(raw), v, 0).Next()
	if err != nil {
		t.Fatalf("decode % x: %v", raw, err)
	}
	return p
}

// sizeOf calls the size function matching p's type, so the test checks
// that each one agrees with what the encoder wrote.
func sizeOf(v codec.Version, p *codec.Packet) (int, error) {
	switch p.Type {
	case codec.TypeConnect:
		return codec.ConnectSize(&p.Connect)
	case codec.TypeConnack:
		return codec.ConnackSize(v, &p.Connack)
	case codec.TypePublish:
		return codec.PublishSize(v, &p.Publish)
	case codec.TypeSubscribe:
		return codec.SubscribeSize(v, &p.Subscribe)
	case codec.TypeSuback:
		return codec.SubackSize(v, &p.Suback)
	case codec.TypeUnsubscribe:
		return codec.UnsubscribeSize(v, &p.Unsubscribe)
	case codec.TypeUnsuback:
		return codec.UnsubackSize(v, &p.Suback)
	case codec.TypeDisconnect:
		return codec.DisconnectSize(v, &p.Disconnect)
	case codec.TypeAuth:
		return codec.AuthSize(v, &p.Auth)
	case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
		if p.Ack.ReasonString == "" && len(p.Ack.UserProperties) == 0 {
			return codec.AckSize(v, p.Type, p.Ack.PacketID, p.Ack.ReasonCode)
		}
	}
	return -1, nil
}

// Every golden vector decodes as labelled, and every valid one re-encodes to
// the same bytes (or, for non-canonical input, to bytes that decode the same).
func TestGolden(t *testing.T) {
	for _, c := range loadGolden(t) {
		t.Run(c.name, func(t *testing.T) {
			d := codec.NewDecoder(bytes.NewReader(c.raw), c.version, c.max)
			p, err := d.Next()
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Next() error = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Next() error = %v", err)
			}
			if got, want := p.Size, len(c.raw); got != want {
				t.Errorf("Size=%d, want %d", got, want)
			}
			enc, err := codec.AppendPacket(nil, c.version, p)
			if err != nil {
				t.Fatalf("AppendPacket() error = %v", err)
			}
			if n, err := sizeOf(c.version, p); err != nil || (n >= 0 && n != len(enc)) {
				t.Errorf("size function = %d, %v; encoder wrote %d", n, err, len(enc))
			}
			if c.nonCanonical {
				again, err := codec.AppendPacket(nil, c.version, decodeOne(t, c.version, enc))
				if err != nil || !bytes.Equal(again, enc) {
					t.Errorf("re-encode of non-canonical input unstable:\n% x\n% x (%v)", enc, again, err)
				}
			} else if !bytes.Equal(enc, c.raw) {
				t.Errorf("re-encoded\n got % x\nwant % x", head(enc), head(c.raw))
			}
			if _, err := d.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("Next() after last packet = %v, want io.EOF", err)
			}
		})
	}
}

func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
