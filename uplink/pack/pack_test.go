package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func readings(n int, payload func(i int) []byte) []Reading {
	rs := make([]Reading, n)
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for i := range rs {
		rs[i] = Reading{
			Seq:     uint64(1000 + i),
			Time:    t0.Add(time.Duration(i) * time.Minute),
			Topic:   []string{"sites/042/air/pm25", "sites/042/air/pm10", "sites/042/env"}[i%3],
			QoS:     byte(i % 2),
			Payload: payload(i),
		}
	}
	return rs
}

func jsonPayload(i int) []byte {
	return []byte(`{"t":` + time.Unix(int64(1780000000+60*i), 0).UTC().Format(`"2006-01-02T15:04:05Z"`) + `,"pm25":12.` + string(rune('0'+i%10)) + `}`)
}

func randomPayload(seed uint64) func(int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	return func(int) []byte {
		b := make([]byte, 340)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		rs       []Reading
		c        Compression
		wantComp Compression
	}{
		{"empty", nil, Deflate, Stored},
		{"one stored", readings(1, jsonPayload), Stored, Stored},
		{"json deflated", readings(500, jsonPayload), Deflate, Deflate},
		{"random stored", readings(50, randomPayload(1)), Stored, Stored},
		{"empty payloads and retain", func() []Reading {
			rs := readings(4, func(int) []byte { return nil })
			rs[2].Retain, rs[3].QoS = true, 2
			return rs
		}(), Deflate, Deflate},
	}
	var e Encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := e.Encode(nil, "site-1", tt.rs, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.ClientID != "site-1" || p.Compression != tt.wantComp || len(p.Readings) != len(tt.rs) {
				t.Fatalf("got client %q, %v, %d readings; want site-1, %v, %d", p.ClientID, p.Compression, len(p.Readings), tt.wantComp, len(tt.rs))
			}
			for i, got := range p.Readings {
				want := tt.rs[i]
				if got.Seq != want.Seq || !got.Time.Equal(want.Time) || got.Topic != want.Topic ||
					got.QoS != want.QoS || got.Retain != want.Retain || !bytes.Equal(got.Payload, want.Payload) {
					t.Fatalf("reading %d: got %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

// Deflate never costs more than storing, and a body deflate cannot shrink
// is stored: its pack is the body plus Overhead.
func TestIncompressibleIsStored(t *testing.T) {
	var e Encoder
	rs := readings(100, randomPayload(7))
	stored, err := e.Encode(nil, "s", rs, Stored)
	if err != nil {
		t.Fatal(err)
	}
	deflated, err := e.Encode(nil, "s", rs, Deflate)
	if err != nil {
		t.Fatal(err)
	}
	if len(deflated) > len(stored) {
		t.Fatalf("deflate of random payloads: %d bytes, stored %d", len(deflated), len(stored))
	}
	// One random reading with an empty client id: nothing for deflate to
	// share, so the pack is stored.
	one, err := e.Encode(nil, "", readings(1, randomPayload(9)), Deflate)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(one)
	if err != nil || p.Compression != Stored {
		t.Fatalf("one random reading: Decode=%v, compression %v; want stored", err, p.Compression)
	}
	body := 2 + 2 + 2 + len(p.Readings[0].Topic) + 4 + recordHead + 340
	if len(one) != body+Overhead {
		t.Fatalf("stored pack of %d bytes, want body %d + %d", len(one), body, Overhead)
	}
}

func TestFit(t *testing.T) {
	var e Encoder
	for _, max := range []int{200, 1024, 4096, 16384} {
		rs := readings(5000, jsonPayload)
		b, n, err := e.Fit(nil, "site", rs, Deflate, max, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || len(b) > max {
			t.Fatalf("max %d: %d readings in %d bytes", max, n, len(b))
		}
		// The next reading would not have fitted by much: the pack is at
		// least 80 % full.
		if len(b) < max*8/10 {
			t.Errorf("max %d: pack of %d bytes (%d readings) is less than 80 %% full", max, len(b), n)
		}
		p, err := Decode(b)
		if err != nil || len(p.Readings) != n {
			t.Fatalf("max %d: Decode=%v, %d readings", max, err, len(p.Readings))
		}
	}
	// A reading larger than the bound fits nowhere.
	big := readings(1, randomPayload(3))
	if _, n, err := e.Fit(nil, "site", big, Deflate, 100, 0); n != 0 || err != nil {
		t.Fatalf("Fit of a 340-byte random reading into 100 bytes: n=%d err=%v", n, err)
	}
}

// Every truncation and every flipped byte of a pack is rejected whole.
func TestCorruptRejectedWhole(t *testing.T) {
	var e Encoder
	for _, c := range []Compression{Stored, Deflate} {
		good, err := e.Encode(nil, "site", readings(20, jsonPayload), c)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(good) {
			if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: pack cut to %d of %d bytes: err=%v, want ErrCorrupt", c, n, len(good), err)
			}
		}
		for i := range good {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				b := bytes.Clone(good)
				b[i] ^= x
				if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%v: byte %d ^ %#x: err=%v, want ErrCorrupt", c, i, x, err)
				}
			}
		}
		if _, err := Decode(append(bytes.Clone(good), 0)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: a byte appended: err=%v", c, err)
		}
	}
}

// reseal gives a hand-damaged pack a correct CRC, so the decoder's later
// checks are reached.
func reseal(b []byte) []byte {
	n := len(b) - trailerLen
	binary.BigEndian.PutUint32(b[n:], crc32.ChecksumIEEE(b[:n]))
	return b
}

func setByte(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func TestDecodeErrorsNameTheDefect(t *testing.T) {
	var e Encoder
	good, _ := e.Encode(nil, "site", readings(3, jsonPayload), Stored)
	first := headerLen + 2 + len("site") + 2 + 3*2 + 18 + 18 + 13 + 4 // the first reading
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"short", []byte("UPAK"), "shorter than"},
		{"magic", append([]byte("XPAK"), good[4:]...), "magic"},
		{"version", append(append([]byte("UPAK"), 2), good[5:]...), "version 2"},
		{"crc", append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1), "CRC-32"},
		{"compression", reseal(append(append([]byte("UPAK\x01"), 9), good[6:]...)), "unknown compression 9"},
		{"huge body", reseal(append([]byte("UPAK\x01\x00\xff\xff\xff\xff"), good[10:]...)), "declared body"},
		{"body length", reseal(append([]byte("UPAK\x01\x00\x00\x00\x00\x05"), good[10:]...)), "header says 5"},
		{"topic index", reseal(setByte(good, first+17, 7)), "topic index 7"},
		{"qos 3", reseal(setByte(good, first+18, 3)), "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want ErrCorrupt naming %q", err, tt.want)
			}
		})
	}
}
