package queue

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var goldenTime = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The on-disk record layout is a file format: pin it with golden vectors so a change shows up.
func TestRecordGolden(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"qos1-retain-expiry", Record{Topic: "site/7/temp", Payload: []byte("21.5"), QoS: 1, Retain: true,
			EnqueuedAt: goldenTime, ExpiresAt: goldenTime.Add(24 * time.Hour)}},
		{"qos0-no-expiry-empty-payload", Record{Topic: "a", QoS: 0, EnqueuedAt: goldenTime}},
		{"qos2-binary-payload", Record{Topic: "bin", Payload: []byte{0, 1, 0xff}, QoS: 2, EnqueuedAt: goldenTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendRecord(nil, &tt.rec)
			path := filepath.Join("testdata", "record-v1-"+tt.name+".hex")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden: %v (run with UPDATE_GOLDEN=1 once)", err)
			}
			want, err := hex.DecodeString(strings.TrimSpace(string(text)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendRecord()=%x, want %x", got, want)
			}
			dec, err := decodeRecord(42, want)
			if err != nil {
				t.Fatalf("decodeRecord()=%v", err)
			}
			wantRec := tt.rec
			wantRec.Seq = 42
			if !recordsEqual(dec, wantRec) {
				t.Fatalf("decodeRecord()=%+v, want %+v", dec, wantRec)
			}
			size, err := recordSize(want)
			if err != nil || size != tt.rec.size() {
				t.Fatalf("recordSize()=%d, %v, want %d", size, err, tt.rec.size())
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	valid := appendRecord(nil, &Record{Topic: "t", Payload: []byte("p"), EnqueuedAt: goldenTime, ExpiresAt: goldenTime})
	tests := []struct {
		name string
		v    []byte
		want error
	}{
		{"empty", nil, errRecordShort},
		{"short header", valid[:5], errRecordShort},
		{"unknown version", append([]byte{2}, valid[1:]...), errRecordVersion},
		{"unknown flag", append([]byte{1, 0x80}, valid[2:]...), errRecordFlags},
		{"qos 3", append([]byte{1, 0x03}, valid[2:]...), errRecordFlags},
		{"expiry cut", valid[:12], errRecordShort},
		{"topic length past end", append(append([]byte{}, valid[:18]...), 0x7f, 'x'), errRecordTopic},
		{"zero topic length", append(append([]byte{}, valid[:18]...), 0x00), errRecordTopic},
		{"unterminated varint", append(append([]byte{}, valid[:18]...), 0xff), errRecordTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRecord(1, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("decodeRecord()=%v, want %v", err, tt.want)
			}
		})
	}
}

func recordsEqual(a, b Record) bool {
	return a.Seq == b.Seq && a.Topic == b.Topic && bytes.Equal(a.Payload, b.Payload) && a.QoS == b.QoS &&
		a.Retain == b.Retain && a.EnqueuedAt.Equal(b.EnqueuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}
