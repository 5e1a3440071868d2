package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modemsim/simtest"
)

// writeSelfSigned writes a self-signed certificate and its key as PEM
// files in dir, named after name.
func writeSelfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestFlushPreflightErrorsExitTwoBeforeTheModem runs `flush` against the
// simulator with configuration errors only the window used to find (in the
// TLS handshake or at AT+CSTT, after minutes of radio time): each exits 2
// naming the problem, the module hears not one byte (so no AT+CFUN=1), and
// no queue file is created.
func TestFlushPreflightErrorsExitTwoBeforeTheModem(t *testing.T) {
	sim := simtest.StartFaults(t, "")
	dir := t.TempDir()
	certA, keyA := writeSelfSigned(t, dir, "a")
	_, keyB := writeSelfSigned(t, dir, "b")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("no PEM here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"CA file not PEM", []string{"--tls", "--ca-file", notPEM}, "--ca-file " + notPEM + " holds no PEM certificate"},
		{"CA file unreadable", []string{"--tls", "--ca-file", dir}, "--ca-file: read " + dir},
		{"cert file not PEM", []string{"--tls", "--cert-file", notPEM, "--key-file", keyA}, "--cert-file " + notPEM + " holds no PEM certificate"},
		{"key file not PEM", []string{"--tls", "--cert-file", certA, "--key-file", notPEM}, "--key-file " + notPEM + " holds no PEM private key"},
		{"key of another certificate", []string{"--tls", "--cert-file", certA, "--key-file", keyB}, "private key does not match public key"},
		{"hybrid key exchange without TLS", []string{"--tls-hybrid-kex"}, "--tls-hybrid-kex needs --tls"},
		{"no resumption without TLS", []string{"--tls-no-resume"}, "--tls-no-resume needs --tls"},
		{"quote in APN", []string{"--apn", `iot"1`}, "--apn"},
		{"line break in APN password", []string{"--apn-user", "u", "--apn-password", "pw\r\nAT"}, "--apn-password"},
		{"non-ASCII APN user", []string{"--apn-user", "üser", "--apn-password", "pw"}, "--apn-user"},
		{"APN user without APN", []string{"--apn", "", "--apn-user", "u"}, "--apn-user and --apn-password need --apn"},
		{"unparsable broker", []string{"--broker", "mqtt example.org:1883"}, "--broker"},
		{"quote in broker host", []string{"--broker", `h"x:1883`}, "--broker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "q.db")
			args := append([]string{"flush", "--db", db, "--device", sim.Path(), "--apn", "iot", "--broker", "127.0.0.1:1883"}, tt.args...)
			code, out, stderr := runApp(t, "", args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", code, out, stderr)
			}
			if !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "invalid configuration") {
				t.Errorf("stderr %q does not name %q as a configuration error", stderr, tt.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("more than one line on stderr: %q", stderr)
			}
			if strings.Contains(stderr, "pw\r") || strings.Contains(stderr, `pw\r`) {
				t.Errorf("the APN password appears in the error: %q", stderr)
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed preflight created the queue (stat: %v)", err)
			}
		})
	}
	if acc := sim.Accounting(); acc.UARTBytesIn != 0 {
		t.Errorf("the module received %d bytes during failed preflights, want none", acc.UARTBytesIn)
	}
}
