package queue

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func mustPutInbox(t testing.TB, q *Queue, m InboxMessage, dup bool, maxBytes int64) (InboxOutcome, uint64) {
	t.Helper()
	o, id, err := q.PutInbox(m, dup, maxBytes)
	if err != nil {
		t.Fatalf("PutInbox(%+v)=%v", m, err)
	}
	return o, id
}

// Ensure PutInbox keeps every field, assigns increasing ids and counts; AckInbox removes.
func TestInboxStoresEveryFieldAndAcks(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	q := mustOpen(t, &Options{Now: clock.Now})
	msgs := []InboxMessage{
		{Topic: "cmd/site/1/config", Payload: []byte(`{"interval":300}`), QoS: 1, PacketID: 7},
		{Topic: "cmd/site/1/reboot", Payload: []byte{0, 0xff, 1}, QoS: 2, Retain: true, PacketID: 8},
		{Topic: "cmd/site/1/empty", QoS: 1, PacketID: 9},
	}
	for i, m := range msgs {
		o, id := mustPutInbox(t, q, m, false, 0)
		if o != InboxStored || id != uint64(i+1) {
			t.Fatalf("message %d: outcome %v id %d, want stored id %d", i, o, id, i+1)
		}
	}
	got, err := q.Inbox(0, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Inbox()=%d messages, %v", len(got), err)
	}
	for i, m := range got {
		w := msgs[i]
		if m.Topic != w.Topic || !bytes.Equal(m.Payload, w.Payload) || m.QoS != w.QoS || m.Retain != w.Retain ||
			m.PacketID != w.PacketID || !m.ReceivedAt.Equal(clock.now) || m.ID != uint64(i+1) {
			t.Errorf("message %d = %+v, want %+v", i, m, w)
		}
	}
	st, _ := q.InboxStats()
	if st.Messages != 3 || st.Bytes != int64(len("cmd/site/1/config")+16+len("cmd/site/1/reboot")+3+len("cmd/site/1/empty")) || st.Received != 3 {
		t.Errorf("stats %+v", st)
	}
	if n, err := q.AckInbox(2); n != 1 || err != nil {
		t.Fatalf("AckInbox(2)=%d, %v", n, err)
	}
	if _, err := q.AckInbox(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AckInbox(2) again = %v, want ErrNotFound", err)
	}
	if _, err := q.InboxGet(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("InboxGet(2) = %v, want ErrNotFound", err)
	}
	if m, err := q.InboxGet(3); err != nil || m.Topic != "cmd/site/1/empty" {
		t.Fatalf("InboxGet(3) = %+v, %v", m, err)
	}
	if n, err := q.AckAllInbox(); n != 2 || err != nil {
		t.Fatalf("AckAllInbox()=%d, %v", n, err)
	}
	// Ids are never reused.
	if _, id := mustPutInbox(t, q, msgs[0], false, 0); id != 4 {
		t.Fatalf("id after acks = %d, want 4", id)
	}
}

// Ensure redeliveries are recognised and new messages under a reused packet id are not.
func TestInboxRecognisesRedeliveries(t *testing.T) {
	a := InboxMessage{Topic: "cmd/a", Payload: []byte("one"), QoS: 1, PacketID: 5}
	b := InboxMessage{Topic: "cmd/a", Payload: []byte("two"), QoS: 1, PacketID: 5}
	a2 := InboxMessage{Topic: "cmd/a", Payload: []byte("one"), QoS: 2, PacketID: 6}
	b2 := InboxMessage{Topic: "cmd/a", Payload: []byte("other"), QoS: 2, PacketID: 6}
	type put struct {
		m       InboxMessage
		dup     bool
		release bool // ReleaseInbox(m.PacketID) before the put
		ackAll  bool // AckAllInbox before the put (the message was handled)
		want    InboxOutcome
	}
	tests := []struct {
		name string
		puts []put
		msgs int
	}{
		{"dup of stored QoS 1", []put{{m: a, want: InboxStored}, {m: a, dup: true, want: InboxDuplicate}}, 1},
		{"same content without dup flag is new", []put{{m: a, want: InboxStored}, {m: a, want: InboxStored}}, 2},
		{"dup flag with other content is new", []put{{m: a, want: InboxStored}, {m: b, dup: true, want: InboxStored}}, 2},
		{"dup after the message was handled", []put{{m: a, want: InboxStored}, {m: a, dup: true, ackAll: true, want: InboxDuplicate}}, 0},
		{"QoS 2 unreleased id is the same message", []put{{m: a2, want: InboxStored}, {m: b2, want: InboxDuplicate}}, 1},
		{"QoS 2 released id is new", []put{{m: a2, want: InboxStored}, {m: b2, release: true, want: InboxStored}}, 2},
		{"QoS 2 dup after release", []put{{m: a2, want: InboxStored}, {m: a2, dup: true, release: true, want: InboxDuplicate}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustOpen(t, nil)
			dups := 0
			for i, p := range tt.puts {
				if p.ackAll {
					if _, err := q.AckAllInbox(); err != nil {
						t.Fatal(err)
					}
				}
				if p.release {
					if err := q.ReleaseInbox(p.m.PacketID); err != nil {
						t.Fatal(err)
					}
				}
				if o, _ := mustPutInbox(t, q, p.m, p.dup, 0); o != p.want {
					t.Fatalf("put %d: %v, want %v", i, o, p.want)
				}
				if p.want == InboxDuplicate {
					dups++
				}
			}
			st, _ := q.InboxStats()
			if st.Messages != int64(tt.msgs) || st.Duplicates != uint64(dups) {
				t.Fatalf("stats %+v, want %d messages %d duplicates", st, tt.msgs, dups)
			}
		})
	}
}

// Ensure a full inbox refuses new messages, keeps the old ones, counts the refusal, and takes
// messages again once room is made.
func TestInboxFullRefusesNewKeepsOld(t *testing.T) {
	q := mustOpen(t, nil)
	m := InboxMessage{Topic: "t", Payload: bytes.Repeat([]byte("x"), 99), QoS: 1} // 100 bytes
	for i := range 3 {
		m.PacketID = uint16(i + 1)
		if o, _ := mustPutInbox(t, q, m, false, 300); o != InboxStored {
			t.Fatalf("put %d: %v", i, o)
		}
	}
	m.PacketID = 4
	if o, id := mustPutInbox(t, q, m, false, 300); o != InboxFull || id != 0 {
		t.Fatalf("put into full inbox: %v %d", o, id)
	}
	big := InboxMessage{Topic: "t", Payload: make([]byte, 400), QoS: 1, PacketID: 5}
	if _, err := q.AckAllInbox(); err != nil {
		t.Fatal(err)
	}
	if o, _ := mustPutInbox(t, q, big, false, 300); o != InboxFull {
		t.Fatalf("message larger than the bound: %v", o)
	}
	if o, _ := mustPutInbox(t, q, m, false, 300); o != InboxStored {
		t.Fatalf("put after ack: %v", o)
	}
	st, _ := q.InboxStats()
	if st.Refused != 2 || st.Messages != 1 || st.Received != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// Ensure failures are counted per message and in total, the message stays, and the inbox
// survives Compact and reopening.
func TestInboxFailuresAndCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpenPath(t, path, nil)
	_, id := mustPutInbox(t, q, InboxMessage{Topic: "t", Payload: []byte("p"), QoS: 2, PacketID: 1}, false, 0)
	for want := 1; want <= 2; want++ {
		n, err := q.InboxFailed(id, "hook exited 3")
		if err != nil || n != want {
			t.Fatalf("InboxFailed=%d, %v; want %d", n, err, want)
		}
	}
	if _, err := q.InboxFailed(99, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("InboxFailed(99)=%v", err)
	}
	if err := q.Compact(); err != nil {
		t.Fatal(err)
	}
	q2 := mustOpenPath(t, path, nil)
	m, err := q2.InboxGet(id)
	if err != nil || m.Attempts != 2 || m.LastError != "hook exited 3" || string(m.Payload) != "p" {
		t.Fatalf("after compact: %+v, %v", m, err)
	}
	// The QoS 2 state survived too.
	if o, _ := mustPutInbox(t, q2, InboxMessage{Topic: "t", Payload: []byte("p"), QoS: 2, PacketID: 1}, true, 0); o != InboxDuplicate {
		t.Fatalf("QoS 2 redelivery after reopen: %v", o)
	}
	st, _ := q2.InboxStats()
	if st.HookFailures != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func FuzzDecodeInbox(f *testing.F) {
	f.Add(appendInbox(nil, &InboxMessage{Topic: "a/b", Payload: []byte("x"), QoS: 1, Retain: true, PacketID: 9, Attempts: 2, LastError: "e"}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeInbox(1, v)
		if err != nil {
			return
		}
		again := appendInbox(nil, &m)
		m2, err := decodeInbox(1, again)
		if err != nil || m2.Topic != m.Topic || !bytes.Equal(m2.Payload, m.Payload) || m2.Attempts != m.Attempts ||
			m2.LastError != m.LastError || m2.QoS != m.QoS || m2.Retain != m.Retain || m2.PacketID != m.PacketID {
			t.Fatalf("round trip: %+v vs %+v, %v", m, m2, err)
		}
	})
}
