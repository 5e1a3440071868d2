package modem_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// selfSigned is a TLS certificate for "server.test" and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "server.test"},
		DNSNames:     []string{"server.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// tlsRecordServer serves TLS on loopback: for each line it reads it answers
// with reply, written as one TLS record.
func tlsRecordServer(t testing.TB, cert tls.Certificate, reply []byte) (host string, port int) {
	t.Helper()
	ln := tls.NewListener(testkit.Listen(t), &tls.Config{
		Certificates:                []tls.Certificate{cert},
		MinVersion:                  tls.VersionTLS13,
		DynamicRecordSizingDisabled: true,
	})
	serveEach(t, ln, func(c net.Conn) {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	})
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

// TestSimulatorTLSRecordSplitAcrossReads runs TLS through the modem's
// connection against the simulator, under every "+CIPRXGET: 1" policy: the
// server's 4,000-byte record cannot come in one AT+CIPRXGET=2 read (at most
// 1,460 bytes), so crypto/tls must reassemble it from several Reads of the
// Conn, and the plaintext must come out whole.
func TestSimulatorTLSRecordSplitAcrossReads(t *testing.T) {
	cert, pool := selfSigned(t)
	reply := binaryPayload(4000)
	host, port := tlsRecordServer(t, cert, reply)
	for _, policy := range modemsim.RxURCPolicies() {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := modemsim.Fast()
			cfg.Variants.RxURC = policy
			cfg.Variants.RxURCRepeatEvery = 20 * time.Millisecond
			sim, m := startSim(t, cfg, modem.Options{QuickSend: true, PollInterval: 50 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c := bringUp(t, ctx, m, host, port)
			if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			c.AwaitReplies(1, true)
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "server.test", MinVersion: tls.VersionTLS13})
			if err := tc.HandshakeContext(ctx); err != nil {
				t.Fatalf("handshake over the modem: %v", err)
			}
			before := sim.Accounting()
			for round := range 2 {
				c.AwaitReplies(1, false)
				if _, err := tc.Write([]byte("send\n")); err != nil {
					t.Fatalf("round %d: Write: %v", round, err)
				}
				c.AwaitReplies(1, true)
				got := make([]byte, len(reply))
				if _, err := io.ReadFull(tc, got); err != nil {
					t.Fatalf("round %d: ReadFull: %v", round, err)
				}
				if !bytes.Equal(got, reply) {
					t.Fatalf("round %d: the record's plaintext differs from what the server wrote", round)
				}
			}
			c.AwaitReplies(0, false)
			acc := sim.Accounting()
			// Each record is 4,022 bytes on the wire: at least three reads.
			if reads := acc.RxReads - acc.RxEmptyReads - before.RxReads + before.RxEmptyReads; reads < 2*3 {
				t.Errorf("%d reads with data for two records of 4,022 bytes; each should span three or more", reads)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Conn.Close: %v", err)
			}
		})
	}
}
