package uplink_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/queue"
	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/brokertest"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// tls13RecordOverhead is what a TLS 1.3 record adds to its payload: the
// 5-byte header, the content type byte and a 16-byte AEAD tag.
const tls13RecordOverhead = 5 + 1 + 16

// handshakeBytes is one TLS connection's handshake as a window makes it,
// up and down, the session ticket the server sends after it included.
type handshakeBytes struct {
	up, down, ticket int64
	resumed          bool
	group            tls.CurveID
}

// measureHandshake connects to the broker through the window's handshake
// (offering the session stored in q) and then sends an MQTT CONNECT, whose
// CONNACK comes behind the server's session ticket: the bytes after the
// handshake, less the two MQTT records, are the ticket.
func measureHandshake(b *testing.B, tcfg uplink.TLSConfig, broker string, q *queue.Queue) handshakeBytes {
	b.Helper()
	raw, err := net.Dial("tcp", broker)
	if err != nil {
		b.Fatal(err)
	}
	var read, written atomic.Int64
	conn := countingConn{raw, &read, &written}
	defer conn.Close()
	tconn, err := uplink.TLSHandshake(context.Background(), conn, tcfg, broker, q, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatalf("handshake: %v", err)
	}
	hs := handshakeBytes{up: written.Load(), down: read.Load()}
	cs := tconn.ConnectionState()
	hs.resumed, hs.group = cs.DidResume, cs.CurveID
	connect, err := codec.AppendConnect(nil, &codec.Connect{Version: codec.V311, ClientID: "site-bench", CleanStart: true, KeepAlive: 60})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tconn.Write(connect); err != nil {
		b.Fatal(err)
	}
	d := codec.NewDecoder(tconn, codec.V311, 1<<16)
	p, err := d.Next()
	if err != nil || p.Type != codec.TypeConnack {
		b.Fatalf("CONNACK: %v, %v", p, err)
	}
	const connackBytes = 4
	hs.ticket = read.Load() - hs.down - (connackBytes + tls13RecordOverhead)
	hs.down += hs.ticket
	if up := written.Load() - hs.up; up != int64(len(connect)+tls13RecordOverhead) {
		b.Fatalf("CONNECT took %d bytes, want one record of %d", up, len(connect)+tls13RecordOverhead)
	}
	return hs
}

// BenchmarkTLSHandshakeBytes measures the bytes of a window's TLS 1.3
// handshake with the embedded broker (Go's crypto/tls), up and down,
// session ticket included: classic against hybrid post-quantum key
// exchange, with a client certificate (ECDSA P-256) or without, the
// server sending an ECDSA P-256 leaf alone or an RSA-2048 leaf with its
// intermediate (as under a public CA), full against resumed from the
// session a first handshake stored in the queue.
func BenchmarkTLSHandshakeBytes(b *testing.B) {
	for _, kex := range []string{"classic", "hybrid"} {
		for _, auth := range []string{"mutual", "server"} {
			for _, chain := range []string{"ecdsa-leaf", "rsa+intermediate"} {
				benchmarkHandshakeBytes(b, kex, auth, chain)
			}
		}
	}
}

func benchmarkHandshakeBytes(b *testing.B, kex, auth, chain string) {
	b.Run(fmt.Sprintf("kex=%s/auth=%s/chain=%s", kex, auth, chain), func(b *testing.B) {
		ca := newTestCA(b)
		serverTLS := serverTLSFor(b, ca, chain)
		broker, err := brokertest.Start(brokertest.Options{TLS: serverTLS})
		if err != nil {
			b.Fatal(err)
		}
		defer broker.Close()
		tcfg := uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, ServerName: "broker.test", HybridKEX: kex == "hybrid"}
		if auth == "mutual" {
			tcfg.CertFile, tcfg.KeyFile = ca.clientCert, ca.clientKey
		}
		for i := 0; i < b.N; i++ {
			q, err := queue.Open(filepath.Join(b.TempDir(), "queue.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			full := measureHandshake(b, tcfg, broker.Addr(), q)
			resumed := measureHandshake(b, tcfg, broker.Addr(), q)
			q.Close()
			if full.resumed || !resumed.resumed {
				b.Fatalf("first handshake resumed %v, second %v", full.resumed, resumed.resumed)
			}
			b.ReportMetric(float64(full.up), "full-up-B")
			b.ReportMetric(float64(full.down), "full-down-B")
			b.ReportMetric(float64(resumed.up), "resumed-up-B")
			b.ReportMetric(float64(resumed.down), "resumed-down-B")
			b.ReportMetric(float64(full.ticket), "ticket-down-B")
		}
	})
}

// BenchmarkNBIoTTLSWindow runs windows of 10 readings over TLS through the
// simulator's NB-IoT profile (2,500 B/s up, 2,000 B/s down, 1 s round
// trip), on its virtual clock: a first window (full handshake) and a
// second one (resumed), with classic or hybrid key exchange, mutual TLS
// and either server chain of BenchmarkTLSHandshakeBytes, and reports each one's radio-on seconds and bytes on air.
func BenchmarkNBIoTTLSWindow(b *testing.B) {
	for _, kex := range []string{"classic", "hybrid"} {
		for _, chain := range []string{"ecdsa-leaf", "rsa+intermediate"} {
			benchmarkNBIoTTLSWindow(b, kex, chain)
		}
	}
}

func benchmarkNBIoTTLSWindow(b *testing.B, kex, chain string) {
	b.Run("kex="+kex+"/chain="+chain, func(b *testing.B) {
		ca := newTestCA(b)
		broker, err := brokertest.Start(brokertest.Options{TLS: serverTLSFor(b, ca, chain)})
		if err != nil {
			b.Fatal(err)
		}
		defer broker.Close()
		simCfg := modemsim.NBIoT()
		simCfg.VirtualClock = true
		for i := 0; i < b.N; i++ {
			q, dir := benchQueue(b, 0, originalReading)
			for _, round := range []string{"full", "resumed"} {
				recs := make([]queue.Record, 10)
				for r := range recs {
					topic, payload := originalReading(r)
					recs[r] = queue.Record{Topic: topic, Payload: payload, QoS: 1}
				}
				if _, err := q.Enqueue(recs...); err != nil {
					b.Fatal(err)
				}
				sim, err := modemsim.Start(simCfg)
				if err != nil {
					b.Fatal(err)
				}
				cfg := uplink.Defaults()
				cfg.Device = sim.Path()
				cfg.APN = "nbiot"
				cfg.Broker = broker.Addr()
				cfg.ClientID = "site-bench"
				cfg.LockPath = filepath.Join(dir, "modem.lock")
				cfg.TLS = uplink.TLSConfig{Enabled: true, CAFile: ca.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey,
					ServerName: "broker.test", HybridKEX: kex == "hybrid"}
				sum, err := uplink.RunWindow(context.Background(), cfg, q)
				acc := sim.Accounting()
				sim.Close()
				if err != nil || sum.Acked != 10 {
					b.Fatalf("%s window: %+v %v", round, sum, err)
				}
				b.ReportMetric(acc.RadioOnSeconds, round+"-radio-s")
				b.ReportMetric(float64(acc.AirBytesUp), round+"-air-up-B")
				b.ReportMetric(float64(acc.AirBytesDown), round+"-air-down-B")
			}
			q.Close()
		}
	})
}

// publicChainConfig is a broker-side TLS config like one under a public
// CA: an RSA-2048 leaf sent with its RSA-2048 intermediate (about 2.2 KB
// of certificates, against about 0.5 KB for serverConfig's ECDSA leaf),
// both under ca's root, requiring a client certificate if given.
func (ca *testCA) publicChainConfig(b *testing.B, name string) *tls.Config {
	b.Helper()
	newRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		return k
	}
	interKey, leafKey := newRSA(), newRSA()
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"uploader test"}, CommonName: "uploader test intermediate R1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, ca.cert, &interKey.PublicKey, ca.key)
	if err != nil {
		b.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		b.Fatal(err)
	}
	cfg := ca.serverConfig(b, name)
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{leafDER, interDER}, PrivateKey: leafKey}}
	return cfg
}

// serverTLSFor is the broker's TLS config for a chain name of the benchmarks.
func serverTLSFor(b *testing.B, ca *testCA, chain string) *tls.Config {
	if chain == "rsa+intermediate" {
		return ca.publicChainConfig(b, "broker.test")
	}
	return ca.serverConfig(b, "broker.test")
}
