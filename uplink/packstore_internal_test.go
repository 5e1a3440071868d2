package uplink

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink/pack"
)

func packQueue(t *testing.T, recs []queue.Record) *queue.Queue {
	t.Helper()
	q, err := queue.Open(filepath.Join(t.TempDir(), "queue.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if _, err := q.Enqueue(recs...); err != nil {
		t.Fatal(err)
	}
	return q
}

func noisyJSON(n int, qos func(i int) byte) []queue.Record {
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([]queue.Record, n)
	for i := range recs {
		recs[i] = queue.Record{
			Topic:   fmt.Sprintf("sites/042/air/%d", i%2),
			Payload: fmt.Appendf(nil, `{"t":%d,"pm25":%.1f,"rh":%.1f}`, 1780000000+60*i, 10+r.Float64()*5, 40+r.Float64()*20),
			QoS:     qos(i),
		}
	}
	return recs
}

// A pack's Seq is its last reading's; Ack of it deletes every reading of
// the pack and nothing else; the pack goes at its readings' highest QoS;
// retained and oversized records pass through unpacked, in order.
func TestPackStoreReadAck(t *testing.T) {
	recs := noisyJSON(600, func(i int) byte { return byte(i / 200 % 2) }) // 0..199 QoS 0, 200..399 QoS 1, ...
	recs[250].Retain = true
	big := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	recs[400].Payload = big
	q := packQueue(t, recs)
	s := newPackStore(q, "site-1", "uploader/site-1/pack", 1024, slog.Default())

	var after uint64
	var all []uint64
	var out []string
	for {
		got, err := s.Read(after, 256, 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, r := range got {
			switch r.Topic {
			case "uploader/site-1/pack":
				if len(r.Payload) > 1024 {
					t.Fatalf("pack of %d bytes, max 1024", len(r.Payload))
				}
				if r.ContentType != pack.ContentType || r.Retain {
					t.Fatalf("pack record %+v", r)
				}
				p, err := pack.Decode(r.Payload)
				if err != nil {
					t.Fatal(err)
				}
				var maxQoS byte
				for _, m := range p.Readings {
					maxQoS = max(maxQoS, m.QoS)
					all = append(all, m.Seq)
					if m.Retain {
						t.Fatalf("retained seq %d packed", m.Seq)
					}
				}
				if r.Seq != p.Readings[len(p.Readings)-1].Seq || r.QoS != maxQoS {
					t.Fatalf("pack seq %d qos %d; readings end at %d, highest QoS %d", r.Seq, r.QoS, p.Readings[len(p.Readings)-1].Seq, maxQoS)
				}
				out = append(out, fmt.Sprintf("pack%d", len(p.Readings)))
			default:
				all = append(all, r.Seq)
				out = append(out, fmt.Sprintf("plain%d", r.Seq))
			}
			after = r.Seq
		}
	}
	if len(all) != 600 {
		t.Fatalf("%d readings read, want 600", len(all))
	}
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("reading %d has seq %d: out of order or lost (%v)", i, seq, out)
		}
	}
	joined := strings.Join(out, " ")
	if !strings.Contains(joined, "plain251") || !strings.Contains(joined, "plain401") {
		t.Fatalf("retained seq 251 and oversized seq 401 not sent on their own: %s", joined)
	}
	if s.packs < 6 || s.packed != 598 {
		t.Fatalf("%d packs of %d readings", s.packs, s.packed)
	}

	// Ack one pack: exactly its readings leave the queue.
	var packSeq uint64
	for seq := range s.members {
		packSeq = seq
		break
	}
	members := s.members[packSeq]
	before := queueDepth(t, q)
	if err := s.Ack([]uint64{packSeq}); err != nil {
		t.Fatal(err)
	}
	if d := queueDepth(t, q); d != before-int64(len(members)) {
		t.Fatalf("depth %d after acking a pack of %d readings, was %d", d, len(members), before)
	}
	if _, ok := s.members[packSeq]; ok {
		t.Fatal("acked pack still remembered")
	}
}

// A refused pack puts every reading in the quarantine, each with the
// reason and the pack named; a suspect pack strikes every reading.
func TestPackStoreQuarantineStrike(t *testing.T) {
	q := packQueue(t, noisyJSON(50, func(int) byte { return 1 }))
	s := newPackStore(q, "site-1", "uploader/site-1/pack", 8192, slog.Default())
	got, err := s.Read(0, 256, 256<<10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read: %d records, %v; want one pack", len(got), err)
	}
	if err := s.Strike(got[0].Seq); err != nil {
		t.Fatal(err)
	}
	again := newPackStore(q, "site-1", "uploader/site-1/pack", 8192, slog.Default())
	got2, err := again.Read(0, 256, 256<<10)
	if err != nil || len(got2) != 1 || got2[0].Strikes != 1 || !bytes.Equal(got2[0].Payload, got[0].Payload) {
		t.Fatalf("after a strike: %d records, %v, strikes %d; want the same pack, struck once", len(got2), err, got2[0].Strikes)
	}
	if err := again.Quarantine(got2[0].Seq, "not authorized"); err != nil {
		t.Fatal(err)
	}
	if d := queueDepth(t, q); d != 0 {
		t.Fatalf("depth %d after quarantining the pack", d)
	}
	qr, err := q.Quarantined(0, 100)
	if err != nil || len(qr) != 50 {
		t.Fatalf("quarantine holds %d, %v; want 50", len(qr), err)
	}
	if want := fmt.Sprintf("in the pack ending at seq %d: not authorized", got2[0].Seq); qr[0].Reason != want {
		t.Fatalf("reason %q, want %q", qr[0].Reason, want)
	}
}

func queueDepth(t *testing.T, q *queue.Queue) int64 {
	t.Helper()
	st, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Depth
}
