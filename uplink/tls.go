package uplink

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/nbiot-uploader/uploader/queue"
)

// TLSConfig configures TLS to the broker. Over the modem it is Go's
// crypto/tls on top of the modem's net.Conn, not the module's SSL firmware,
// so the same code and the same certificates serve both transports.
type TLSConfig struct {
	Enabled    bool
	CAFile     string // PEM bundle; empty = the system roots
	CertFile   string // client certificate for mutual TLS
	KeyFile    string
	ServerName string // empty = the broker's host name
	// HybridKEX offers the hybrid post-quantum key exchange X25519MLKEM768
	// first (Go's default since 1.24). Off, the handshake offers X25519,
	// then P-256: the hybrid key share makes the ClientHello about 1.2 KB
	// and the server's first flight about 1.1 KB larger, which on NB-IoT
	// is about a second of radio time per window (README, TLS).
	HybridKEX bool
	// NoResume makes every window's handshake a full one: no session is
	// offered or stored, and one stored before is deleted. By default a
	// window resumes the last window's session (sessioncache.go), which
	// saves the certificates both ways but sends the server's ticket up;
	// see README, TLS, for when that costs more radio time than it saves.
	NoResume bool
}

// classicKEX and hybridKEX are the key exchanges offered, best first.
// Go sends a key share for the first, and with a hybrid first also for
// X25519; a server that supports none of the shares asks for another
// (HelloRetryRequest, one more round trip).
var (
	classicKEX = []tls.CurveID{tls.X25519, tls.CurveP256}
	hybridKEX  = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
)

// validate loads and parses every file before the radio goes on: an
// unreadable or non-PEM file, a CA file without a certificate or a key
// that does not belong to its certificate would otherwise only show in the
// TLS handshake, after minutes of radio time.
func (t TLSConfig) validate() error {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
			return errors.New("--ca-file, --cert-file and --key-file need --tls")
		}
		if t.HybridKEX {
			return errors.New("--tls-hybrid-kex needs --tls")
		}
		if t.NoResume {
			return errors.New("--tls-no-resume needs --tls")
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("--cert-file and --key-file go together")
	}
	if t.CAFile != "" {
		if _, _, err := loadCAPool(t.CAFile); err != nil {
			return err
		}
	}
	if t.CertFile != "" {
		if _, err := loadKeyPair(t.CertFile, t.KeyFile); err != nil {
			return err
		}
	}
	return nil
}

// loadCAPool reads a PEM bundle holding at least one certificate; it
// returns the file's bytes too, which scope stored TLS sessions.
func loadCAPool(file string) (*x509.CertPool, []byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, nil, fmt.Errorf("--ca-file %s holds no PEM certificate", file)
	}
	return pool, data, nil
}

// loadKeyPair reads the client certificate and its key and checks that
// they belong together. Errors name the files, never key bytes.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--key-file: %w", err)
	}
	if !hasPEMBlock(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return tls.Certificate{}, fmt.Errorf("--cert-file %s holds no PEM certificate", certFile)
	}
	if !hasPEMBlock(keyPEM, func(typ string) bool { return typ == "PRIVATE KEY" || strings.HasSuffix(typ, " PRIVATE KEY") }) {
		return tls.Certificate{}, fmt.Errorf("--key-file %s holds no PEM private key", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls says what is wrong ("private key does not match
		// public key", "failed to parse private key") without key bytes.
		return tls.Certificate{}, fmt.Errorf("--cert-file %s with --key-file %s: %w", certFile, keyFile, err)
	}
	return pair, nil
}

// hasPEMBlock reports whether data holds a PEM block of a wanted type.
func hasPEMBlock(data []byte, want func(typ string) bool) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if want(block.Type) {
			return true
		}
	}
}

// clientConfig loads the files. The key file's content is never logged.
func (t TLSConfig) clientConfig(broker string) (*tls.Config, error) {
	cfg, _, err := t.load(broker)
	return cfg, err
}

// load is clientConfig, and the scope of the TLS sessions it may resume:
// a digest of the broker, the server name, the CA bundle and the client
// certificate chain, so that a session stored for one of them is never
// offered to another (sessioncache.go).
func (t TLSConfig) load(broker string) (*tls.Config, [sha256.Size]byte, error) {
	var scope [sha256.Size]byte
	host, _, err := net.SplitHostPort(broker)
	if err != nil {
		return nil, scope, fmt.Errorf("tls: broker %q: %w", broker, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, CurvePreferences: classicKEX}
	if t.HybridKEX {
		cfg.CurvePreferences = hybridKEX
	}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	var caPEM []byte
	if t.CAFile != "" {
		pool, data, err := loadCAPool(t.CAFile)
		if err != nil {
			return nil, scope, fmt.Errorf("tls: %w", err)
		}
		cfg.RootCAs, caPEM = pool, data
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, scope, fmt.Errorf("tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, sessionScope(broker, cfg.ServerName, caPEM, cfg.Certificates), nil
}

// ClientTLS checks the files and returns the crypto/tls configuration for
// broker (host:port), as a window uses it; for `uploader bridge`, which
// shares the window's TLS flags.
func (t TLSConfig) ClientTLS(broker string) (*tls.Config, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if !t.Enabled {
		return nil, nil
	}
	return t.clientConfig(broker)
}

// handshake runs the window's TLS handshake on conn, offering the session
// stored in q and storing the ticket the server sends (sessioncache.go),
// unless NoResume.
// Over the modem records keep their full size from the start (Go
// otherwise begins with records of about 1.2 KB, each a CIPSEND of its
// own).
func (t TLSConfig) handshake(ctx context.Context, conn net.Conn, broker string, q *queue.Queue, log *slog.Logger, overModem bool) (*tls.Conn, error) {
	tcfg, scope, err := t.load(broker)
	if err != nil {
		return nil, err
	}
	if t.NoResume {
		dropStoredSession(q, log)
	} else {
		tcfg.ClientSessionCache = newNoteSessionCache(q, scope, log)
	}
	tcfg.DynamicRecordSizingDisabled = overModem
	tconn := tls.Client(conn, tcfg)
	if p, ok := conn.(replyPacer); ok {
		// The handshake waits for the server's flight: read at the pace
		// of a blocked wait, not the idle PollInterval, so the radio does
		// not idle and the round trip measured on the first reply is not
		// inflated by a late read.
		p.AwaitReplies(1, true)
	}
	if err := tconn.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tconn, nil
}
