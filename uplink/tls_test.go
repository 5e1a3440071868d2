package uplink_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/fault"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// countingConn counts the bytes read and written through a connection.
type countingConn struct {
	net.Conn
	read, written *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// errHelloSeen ends a handshake once the server has the ClientHello.
var errHelloSeen = errors.New("client hello seen")

// captureClientHello runs the client side of cfg against a server that
// stops at the ClientHello, and returns the ClientHello record's size and
// the groups it offers.
func captureClientHello(t *testing.T, cfg *tls.Config) (int64, []tls.CurveID) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	var read, written atomic.Int64
	var size int64
	var groups []tls.CurveID
	srv := tls.Server(countingConn{server, &read, &written}, &tls.Config{
		GetConfigForClient: func(info *tls.ClientHelloInfo) (*tls.Config, error) {
			size, groups = read.Load(), slices.Clone(info.SupportedCurves)
			return nil, errHelloSeen
		},
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = tls.Client(client, cfg).Handshake() // fails: the server stops
		client.Close()
	}()
	err := srv.Handshake()
	server.Close()
	wg.Wait()
	if !errors.Is(err, errHelloSeen) {
		t.Fatalf("server handshake: %v, want it stopped at the ClientHello", err)
	}
	return size, groups
}

// The window's ClientHello offers classic key exchange unless the operator
// asks for the hybrid post-quantum one, whose ML-KEM key share makes it
// more than a kilobyte larger.
func TestClientHelloKeyExchange(t *testing.T) {
	tests := []struct {
		name       string
		hybrid     bool
		minSize    int64
		maxSize    int64
		wantGroups []tls.CurveID
	}{
		// An X25519 share (32 bytes) and the usual extensions.
		{"classic", false, 150, 400, []tls.CurveID{tls.X25519, tls.CurveP256}},
		// The X25519MLKEM768 share is 1,216 bytes, plus the X25519 one.
		{"hybrid", true, 1400, 1700, []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := uplink.TLSConfig{Enabled: true, HybridKEX: tt.hybrid}.ClientTLS("broker.test:8883")
			if err != nil {
				t.Fatal(err)
			}
			size, groups := captureClientHello(t, cfg)
			t.Logf("ClientHello record: %d bytes, groups %v", size, groups)
			if size < tt.minSize || size > tt.maxSize {
				t.Errorf("ClientHello record is %d bytes, want %d..%d", size, tt.minSize, tt.maxSize)
			}
			if !slices.Equal(groups, tt.wantGroups) {
				t.Errorf("groups offered %v, want %v", groups, tt.wantGroups)
			}
		})
	}
}

func TestTLSHybridKEXNeedsTLS(t *testing.T) {
	_, err := uplink.TLSConfig{HybridKEX: true}.ClientTLS("broker.test:8883")
	if err == nil || err.Error() != "--tls-hybrid-kex needs --tls" {
		t.Errorf("err = %v, want --tls-hybrid-kex needs --tls", err)
	}
}

// serverView records what the broker's side of each TLS handshake saw.
type serverView struct {
	mu    sync.Mutex
	conns []tls.ConnectionState
}

// watch makes cfg record every handshake it completes.
func (v *serverView) watch(cfg *tls.Config) {
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		v.mu.Lock()
		v.conns = append(v.conns, cs)
		v.mu.Unlock()
		return nil
	}
}

func (v *serverView) last(t *testing.T) tls.ConnectionState {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.conns) == 0 {
		t.Fatal("the broker saw no TLS handshake")
	}
	return v.conns[len(v.conns)-1]
}

// A window's handshake with the embedded broker (Go's crypto/tls, which
// prefers the hybrid group) settles on the group the window asked for.
func TestWindowTLSKeyExchange(t *testing.T) {
	ca := newTestCA(t)
	serverTLS := ca.serverConfig(t, "broker.test")
	var view serverView
	view.watch(serverTLS)
	broker := startBroker(t, brokertest.Options{TLS: serverTLS})
	for _, tt := range []struct {
		hybrid bool
		want   tls.CurveID
	}{{false, tls.X25519}, {true, tls.X25519MLKEM768}} {
		t.Run(tt.want.String(), func(t *testing.T) {
			q, _ := openQueue(t)
			enqueueReadings(t, q, 5, 1)
			cfg := uplink.Defaults()
			cfg.Transport = uplink.TransportTCP
			cfg.Broker = broker.Addr()
			cfg.ClientID = "site-7"
			cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey,
				ServerName: "broker.test", HybridKEX: tt.hybrid}
			sum, err := uplink.RunWindow(context.Background(), cfg, q)
			if err != nil || sum.Acked != 5 {
				t.Fatalf("window: %+v, %v", sum, err)
			}
			if got := view.last(t).CurveID; got != tt.want {
				t.Errorf("key exchange %v, want %v", got, tt.want)
			}
		})
	}
}

// proxy forwards loopback TCP connections to a broker and reports the
// bytes each carried each way when it ends, so a test sees what a TCP
// window put on the wire.
type proxy struct {
	addr  string
	conns chan [2]int64 // up, down of each finished connection
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), conns: make(chan [2]int64, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				defer b.Close()
				var counts [2]int64
				var both sync.WaitGroup
				both.Add(2)
				pipe := func(dst, src *net.TCPConn, n *int64) {
					defer both.Done()
					*n, _ = io.Copy(dst, src)
					_ = dst.CloseWrite() // the other side sees the end too
				}
				go pipe(b.(*net.TCPConn), c.(*net.TCPConn), &counts[0])
				go pipe(c.(*net.TCPConn), b.(*net.TCPConn), &counts[1])
				both.Wait()
				p.conns <- counts
			}()
		}
	}()
	return p
}

// next returns the bytes up and down of the next connection to end.
func (p *proxy) next(t *testing.T) (up, down int64) {
	t.Helper()
	c := testkit.Recv(t, p.conns, 10*time.Second, "end of the proxied connection")
	return c[0], c[1]
}

// resumptionRig is a TLS broker behind a counting proxy and a site whose
// windows run over it, one queue for all of them.
type resumptionRig struct {
	ca        *testCA
	serverTLS *tls.Config
	view      serverView
	proxy     *proxy
	q         *queue.Queue
	cfg       uplink.Config
}

func newResumptionRig(t *testing.T) *resumptionRig {
	t.Helper()
	r := &resumptionRig{ca: newTestCA(t)}
	r.serverTLS = r.ca.serverConfig(t, "broker.test")
	r.serverTLS.SetSessionTicketKeys([][32]byte{{1}})
	r.view.watch(r.serverTLS)
	broker := startBroker(t, brokertest.Options{TLS: r.serverTLS})
	r.proxy = startProxy(t, broker.Addr())
	r.q, _ = openQueue(t)
	r.cfg = uplink.Defaults()
	r.cfg.Transport = uplink.TransportTCP
	r.cfg.Broker = r.proxy.addr
	r.cfg.ClientID = "site-7"
	r.cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: r.ca.caFile, CertFile: r.ca.clientCert, KeyFile: r.ca.clientKey, ServerName: "broker.test"}
	return r
}

// window runs one window of 5 readings and returns whether the broker saw
// it resume, and the bytes it put on the wire up and down.
func (r *resumptionRig) window(t *testing.T) (resumed bool, up, down int64) {
	t.Helper()
	enqueueReadings(t, r.q, 5, 1)
	sum, err := uplink.RunWindow(context.Background(), r.cfg, r.q)
	if err != nil || sum.Acked != 5 {
		t.Fatalf("window: %+v, %v", sum, err)
	}
	up, down = r.proxy.next(t)
	resumed = r.view.last(t).DidResume
	if want := map[bool]string{false: uplink.TLSFull, true: uplink.TLSResumed}[resumed]; sum.TLS != want {
		t.Errorf("summary says TLS %q, the broker saw %q", sum.TLS, want)
	}
	return resumed, up, down
}

func (r *resumptionRig) note(t *testing.T) []byte {
	t.Helper()
	n, err := r.q.Note(uplink.TLSSessionNote)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Windows resume the TLS session of the window before: no certificates
// either way, fewer bytes down and fewer in all. Up grows: the ticket in
// the ClientHello replaces the client certificate and CertificateVerify,
// and Go's server (mochi) puts the client certificate and its chain into
// the ticket. A note that is damaged, altered or made for other settings,
// or a ticket the server no longer takes, gives a full handshake and a
// good note again, never a failed window.
func TestWindowTLSResumption(t *testing.T) {
	r := newResumptionRig(t)
	resumed, fullUp, fullDown := r.window(t)
	if resumed {
		t.Fatal("the first window resumed a session")
	}
	if r.note(t) == nil {
		t.Fatal("no TLS session stored after the first window")
	}
	resumed, up, down := r.window(t)
	if !resumed {
		t.Fatal("the second window did not resume the first one's session")
	}
	t.Logf("window of 5 readings over TLS 1.3 with mutual TLS: full handshake %d up / %d down, resumed %d up / %d down", fullUp, fullDown, up, down)
	if down >= fullDown || up+down >= fullUp+fullDown {
		t.Errorf("resumed window %d up / %d down, not fewer down and in all than the full one's %d / %d", up, down, fullUp, fullDown)
	}
	if cn := r.view.last(t).PeerCertificates[0].Subject.CommonName; cn != "site-7" {
		t.Errorf("resumed session authenticates %q, want site-7", cn)
	}

	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i%len(b)] ^= 0x40; return b }
	tampers := []struct {
		name   string
		tamper func(t *testing.T, q *queue.Queue)
	}{
		{name: "garbage", tamper: setNote([]byte("not a TLS session"))},
		{name: "truncated", tamper: editNote(func(n []byte) []byte { return n[:len(n)/2] })},
		{name: "bit flipped", tamper: editNote(func(n []byte) []byte { return flip(n, len(n)/2) })},
		{name: "other layout", tamper: editNote(func(n []byte) []byte { return flip(n, 3) })},
		{name: "ticket altered", tamper: rewrite(func(ticket, state []byte) ([]byte, []byte) { return flip(ticket, 7), state })},
		{name: "server session", tamper: rewrite(func(ticket, state []byte) ([]byte, []byte) {
			state = bytes.Clone(state)
			state[2] = 1 // SessionState.Bytes: a server's
			return ticket, state
		})},
		{name: "server rotated its ticket keys", tamper: func(*testing.T, *queue.Queue) {
			r.serverTLS.SetSessionTicketKeys([][32]byte{{2}})
		}},
	}
	for _, tt := range tampers {
		t.Run(tt.name, func(t *testing.T) {
			tt.tamper(t, r.q)
			tampered := r.note(t)
			if resumed, _, _ := r.window(t); resumed {
				t.Fatal("resumed from a note that was tampered with")
			}
			if n := r.note(t); n == nil || bytes.Equal(n, tampered) {
				t.Fatal("the note was not replaced by the full handshake's session")
			}
			if resumed, _, _ := r.window(t); !resumed {
				t.Fatal("the window after did not resume the replaced session")
			}
		})
	}

	// A session made with one client certificate never authenticates
	// another: the scope includes it.
	t.Run("other client certificate", func(t *testing.T) {
		certDER, keyDER := r.ca.issue(t, "site-8", nil, x509.ExtKeyUsageClientAuth)
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
		writePEM(t, certFile, "CERTIFICATE", certDER)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
		r.cfg.TLS.CertFile, r.cfg.TLS.KeyFile = certFile, keyFile
		defer func() { r.cfg.TLS.CertFile, r.cfg.TLS.KeyFile = r.ca.clientCert, r.ca.clientKey }()
		if resumed, _, _ := r.window(t); resumed {
			t.Fatal("resumed a session of another client certificate")
		}
		if cn := r.view.last(t).PeerCertificates[0].Subject.CommonName; cn != "site-8" {
			t.Errorf("the broker authenticated %q, want site-8", cn)
		}
	})

	// With NoResume the stored session is deleted, not offered, and no new
	// one is kept.
	t.Run("no resume", func(t *testing.T) {
		r.cfg.TLS.NoResume = true
		defer func() { r.cfg.TLS.NoResume = false }()
		if r.note(t) == nil {
			t.Fatal("no stored session to begin with")
		}
		for i := range 2 {
			if resumed, _, _ := r.window(t); resumed {
				t.Fatalf("window %d resumed with NoResume", i+1)
			}
			if r.note(t) != nil {
				t.Fatalf("a session is stored after window %d with NoResume", i+1)
			}
		}
	})

	// Someone who can write the queue file can make a note whose checksum
	// holds and whose secret is wrong: the server refuses the PSK binder
	// and ends that window at the TLS step, the records stay queued,
	// crypto/tls drops the note and the next window is a full handshake.
	t.Run("secret altered", func(t *testing.T) {
		if resumed, _, _ := r.window(t); resumed { // stores a session again
			t.Fatal("resumed after the windows with NoResume")
		}
		if err := uplink.RewriteTLSSession(r.q, func(ticket, state []byte) ([]byte, []byte) {
			return ticket, flip(state, 14) // the first byte of the resumption secret
		}); err != nil {
			t.Fatal(err)
		}
		enqueueReadings(t, r.q, 5, 1)
		_, err := uplink.RunWindow(context.Background(), r.cfg, r.q)
		r.proxy.next(t)
		var se *fault.StepError
		if !errors.As(err, &se) || se.Step != uplink.StepTLS {
			t.Fatalf("err = %v, want a tls step error", err)
		}
		if depth(t, r.q) != 5 {
			t.Errorf("%d records queued, want the 5 of the failed window", depth(t, r.q))
		}
		if n := r.note(t); n != nil {
			t.Error("the refused session is still stored")
		}
		sum, err := uplink.RunWindow(context.Background(), r.cfg, r.q)
		r.proxy.next(t)
		if err != nil || sum.Acked != 5 {
			t.Fatalf("window after: %+v, %v", sum, err)
		}
		if r.view.last(t).DidResume {
			t.Error("the window after resumed")
		}
	})
}

func setNote(data []byte) func(*testing.T, *queue.Queue) {
	return editNote(func([]byte) []byte { return data })
}

func editNote(fn func(note []byte) []byte) func(*testing.T, *queue.Queue) {
	return func(t *testing.T, q *queue.Queue) {
		t.Helper()
		if err := q.UpdateNote(uplink.TLSSessionNote, func(old []byte) ([]byte, error) { return fn(old), nil }); err != nil {
			t.Fatal(err)
		}
	}
}

func rewrite(fn func(ticket, state []byte) ([]byte, []byte)) func(*testing.T, *queue.Queue) {
	return func(t *testing.T, q *queue.Queue) {
		t.Helper()
		if err := uplink.RewriteTLSSession(q, fn); err != nil {
			t.Fatal(err)
		}
	}
}

// Over the modem the second window resumes too, with fewer bytes through
// the module down and in all.
func TestWindowTLSResumptionModem(t *testing.T) {
	ca := newTestCA(t)
	serverTLS := ca.serverConfig(t, "broker.test")
	var view serverView
	view.watch(serverTLS)
	broker := startBroker(t, brokertest.Options{TLS: serverTLS})
	q, dir := openQueue(t)
	sim := simtest.Start(t, modemsim.Fast())
	cfg := modemConfig(sim, broker.Addr(), dir)
	cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey, ServerName: "broker.test"}
	var up, down [2]int64
	for i, want := range []bool{false, true} {
		enqueueReadings(t, q, 5, 1)
		sim.ResetAccounting()
		sum, err := uplink.RunWindow(context.Background(), cfg, q)
		if err != nil || sum.Acked != 5 {
			t.Fatalf("window %d: %+v, %v", i+1, sum, err)
		}
		if got := view.last(t).DidResume; got != want {
			t.Fatalf("window %d resumed %v, want %v", i+1, got, want)
		}
		acc := sim.Accounting()
		up[i], down[i] = acc.MQTTBytesUp, acc.MQTTBytesDown
	}
	t.Logf("through the module: full %d up / %d down, resumed %d up / %d down", up[0], down[0], up[1], down[1])
	if down[1] >= down[0] || up[1]+down[1] >= up[0]+down[0] {
		t.Errorf("resumed window %d up / %d down, not fewer down and in all than the full one's %d / %d", up[1], down[1], up[0], down[0])
	}
}
