package uplink

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"testing"
)

// Every setting a session was made with changes its scope, and nothing
// else does.
func TestSessionScope(t *testing.T) {
	cert := func(der ...string) []tls.Certificate {
		c := tls.Certificate{}
		for _, d := range der {
			c.Certificate = append(c.Certificate, []byte(d))
		}
		return []tls.Certificate{c}
	}
	base := sessionScope("broker:8883", "broker.test", []byte("CA"), cert("leaf"))
	if again := sessionScope("broker:8883", "broker.test", []byte("CA"), cert("leaf")); again != base {
		t.Fatal("the same settings give another scope")
	}
	tests := []struct {
		name  string
		scope [32]byte
	}{
		{"broker", sessionScope("broker:8884", "broker.test", []byte("CA"), cert("leaf"))},
		{"server name", sessionScope("broker:8883", "other.test", []byte("CA"), cert("leaf"))},
		{"CA bundle", sessionScope("broker:8883", "broker.test", []byte("CA2"), cert("leaf"))},
		{"system roots", sessionScope("broker:8883", "broker.test", nil, cert("leaf"))},
		{"client certificate", sessionScope("broker:8883", "broker.test", []byte("CA"), cert("leaf2"))},
		{"client chain", sessionScope("broker:8883", "broker.test", []byte("CA"), cert("leaf", "intermediate"))},
		{"no client certificate", sessionScope("broker:8883", "broker.test", []byte("CA"), nil)},
		// Fields are length-prefixed: moving bytes between them is a change.
		{"shifted fields", sessionScope("broker:8883b", "roker.test", []byte("CA"), cert("leaf"))},
	}
	for _, tt := range tests {
		if tt.scope == base {
			t.Errorf("another %s gives the same scope", tt.name)
		}
	}
}

func TestSessionNoteRoundTrip(t *testing.T) {
	n := sessionNote{key: [32]byte{7}, ticket: []byte("ticket"), state: []byte("state")}
	data, err := n.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSessionNote(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.key != n.key || !bytes.Equal(got.ticket, n.ticket) || !bytes.Equal(got.state, n.state) {
		t.Errorf("decoded %+v, want %+v", got, n)
	}
	if _, err := (sessionNote{ticket: make([]byte, 1<<16)}).encode(); !errors.Is(err, errSessionNote) {
		t.Errorf("a 64 KiB ticket: %v, want errSessionNote", err)
	}
}

func TestDecodeSessionNoteRejects(t *testing.T) {
	good, err := sessionNote{key: [32]byte{7}, ticket: []byte("ticket"), state: []byte("state")}.encode()
	if err != nil {
		t.Fatal(err)
	}
	emptyTicket, _ := sessionNote{state: []byte("state")}.encode()
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", good[:sessionNoteHeader-1]},
		{"other magic", append([]byte("uts2"), good[4:]...)},
		{"checksum mismatch", flipped},
		{"empty ticket", emptyTicket},
		{"truncated", good[:len(good)-len("tate")-len("ticket")]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeSessionNote(tt.data); !errors.Is(err, errSessionNote) {
				t.Errorf("err = %v, want errSessionNote", err)
			}
		})
	}
	if _, err := (sessionNote{ticket: []byte("t"), state: []byte{3, 4, 1, 0}}).resumptionState(); !errors.Is(err, errSessionNote) {
		t.Errorf("a server's session state: %v, want errSessionNote", err)
	}
}

// FuzzSessionNote feeds the stored-session decoder, and what it accepts to
// crypto/tls's parser, arbitrary notes: neither may panic, and what decodes
// encodes back to the same bytes.
func FuzzSessionNote(f *testing.F) {
	good, err := sessionNote{key: [32]byte{7}, ticket: []byte("ticket"), state: []byte{3, 4, 2, 0, 1}}.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("uts1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeSessionNote(data)
		if err != nil {
			return
		}
		again, err := n.encode()
		if err != nil {
			t.Fatalf("decoded note does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed the note:\n%x\n%x", data, again)
		}
		_, _ = n.resumptionState()
	})
}

// FuzzSessionNoteBody gets past the checksum: it stores arbitrary bodies
// (ticket length, ticket, session state) in a well-formed note, so that
// what a damaged-then-rechecksummed note holds reaches the ticket split
// and crypto/tls's session parser.
func FuzzSessionNoteBody(f *testing.F) {
	f.Add([]byte{0, 1, 't', 3, 4, 2, 0, 1})
	f.Add([]byte{0, 6, 't', 'i', 'c', 'k', 'e', 't', 3, 4, 2})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		data := append(append(append(sessionNoteMagic[:], make([]byte, sha256.Size)...), sum[:]...), body...)
		n, err := decodeSessionNote(data)
		if err != nil {
			if !errors.Is(err, errSessionNote) {
				t.Fatalf("err %v is not errSessionNote", err)
			}
			return
		}
		if cs, err := n.resumptionState(); err == nil {
			if _, state, err := cs.ResumptionState(); err != nil || state == nil {
				t.Fatalf("accepted session has no state: %v", err)
			}
		}
	})
}
