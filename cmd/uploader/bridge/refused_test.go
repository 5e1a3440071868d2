package bridge

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/pack"
)

// readRefused parses every line of a refused-readings file.
func readRefused(t *testing.T, path string) []RefusedLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []RefusedLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l RefusedLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d %q: %v", len(lines)+1, sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestRefusedLogKeepsEachReadingWholeWithinItsBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refused.ndjson")
	at := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	text := pack.Reading{Seq: 7, Time: time.UnixMilli(1_700_000_007_000), Topic: "sites/a/t", QoS: 1, Payload: []byte(`{"pm25":7.5}`)}
	binary := pack.Reading{Seq: 8, Time: time.UnixMilli(1_700_000_008_000), Topic: "sites/a/raw", QoS: 2, Retain: true, Payload: []byte{0xff, 0x00, 0xfe}}

	l, err := OpenRefusedLog(path, 500)
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := l.Append("site-a", []Refusal{{text, 0x87}, {binary, 0x87}}, at); err != nil || kept != 2 {
		t.Fatalf("append: kept %d, err %v; want 2", kept, err)
	}
	want := []RefusedLine{
		{ClientID: "site-a", Seq: 7, Time: "2023-11-14T22:13:27Z", Topic: "sites/a/t", Payload: `{"pm25":7.5}`, QoS: 1, Reason: "0x87", RefusedAt: "2026-12-06T01:02:03Z"},
		{ClientID: "site-a", Seq: 8, Time: "2023-11-14T22:13:28Z", Topic: "sites/a/raw", PayloadBase64: "/wD+", QoS: 2, Retain: true, Reason: "0x87", RefusedAt: "2026-12-06T01:02:03Z"},
	}
	got := readRefused(t, path)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, got[i], want[i])
		}
	}

	// A third line would pass the 500-byte bound: not kept, file unchanged.
	before, _ := os.ReadFile(path)
	if kept, err := l.Append("site-a", []Refusal{{text, 0x87}}, at); err != nil || kept != 0 {
		t.Errorf("append past the bound: kept %d, err %v; want none, no error", kept, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the file changed past its bound:\n%s", after)
	}

	// Truncated by an operator (copytruncate), it takes lines again.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Three lines against the 500-byte bound: the first two are kept.
	if kept, err := l.Append("site-b", []Refusal{{text, 0x90}, {text, 0x90}, {text, 0x90}}, at); err != nil || kept != 2 {
		t.Fatalf("append after truncation: kept %d, err %v; want 2", kept, err)
	}
	if got := readRefused(t, path); len(got) != 2 || got[0].ClientID != "site-b" || got[1].Reason != "0x90" {
		t.Errorf("after truncation: %+v", got)
	}
}

func TestOpenRefusedLogNamesAPathItCannotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "refused.ndjson")
	if _, err := OpenRefusedLog(path, 0); err == nil {
		t.Fatal("no error for a file in a missing directory")
	}
	if _, err := OpenRefusedLog(filepath.Join(t.TempDir(), "r"), -1); err == nil {
		t.Fatal("no error for a negative bound")
	}
}
