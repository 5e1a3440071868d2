package pack

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics, accepts only what it can re-encode to
// the same readings, and rejects everything else with ErrCorrupt.
func FuzzDecode(f *testing.F) {
	var e Encoder
	for _, c := range []Compression{Stored, Deflate} {
		b, _ := e.Encode(nil, "site", readings(5, jsonPayload), c)
		f.Add(b)
		b, _ = e.Encode(nil, "", nil, c)
		f.Add(b)
	}
	f.Add([]byte("UPAK\x01\x08\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var enc Encoder
		again, err := enc.Encode(nil, p.ClientID, p.Readings, Stored)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q, err := Decode(again)
		if err != nil || len(q.Readings) != len(p.Readings) {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range p.Readings {
			a, b := p.Readings[i], q.Readings[i]
			if a.Seq != b.Seq || !a.Time.Equal(b.Time) || a.Topic != b.Topic || a.QoS != b.QoS || a.Retain != b.Retain || !bytes.Equal(a.Payload, b.Payload) {
				t.Fatalf("reading %d changed: %+v -> %+v", i, a, b)
			}
		}
	})
}
