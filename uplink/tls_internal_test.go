package uplink

import (
	"crypto/tls"
	"net"
	"testing"
)

// recordingPacer is a modem connection's AwaitReplies, recorded.
type recordingPacer struct {
	net.Conn
	calls [][2]any
}

func (p *recordingPacer) AwaitReplies(due int, blocked bool) {
	p.calls = append(p.calls, [2]any{due, blocked})
}

// TestPacedTLSForwardsReplies checks that TLS over the modem still tells the
// modem what the session awaits: the session finds AwaitReplies on the
// connection it is given (a *tls.Conn alone has none, and the modem would
// then read on its fixed PollInterval).
func TestPacedTLSForwardsReplies(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	p := &recordingPacer{Conn: client}
	var conn net.Conn = pacedTLS{tls.Client(p, &tls.Config{ServerName: "broker.test"}), p}
	session, ok := conn.(interface{ AwaitReplies(int, bool) })
	if !ok {
		t.Fatal("pacedTLS does not offer AwaitReplies")
	}
	session.AwaitReplies(3, false)
	session.AwaitReplies(1, true)
	if len(p.calls) != 2 || p.calls[0] != [2]any{3, false} || p.calls[1] != [2]any{1, true} {
		t.Errorf("the modem connection saw %v, want [[3 false] [1 true]]", p.calls)
	}
	if _, ok := any(tls.Client(p, &tls.Config{})).(replyPacer); ok {
		t.Error("a bare *tls.Conn offers AwaitReplies: pacedTLS is not needed")
	}
}
