package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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
}

// validate loads and parses every file before the radio goes on: an
// unreadable or non-PEM file, a CA file without a certificate or a key
// that does not belong to its certificate would otherwise only show in the
// TLS handshake, after minutes of radio time.
func (t TLSConfig) validate() error {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
			return errors.New("--ca-file, --cert-file and --key-file need --tls")
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("--cert-file and --key-file go together")
	}
	if t.CAFile != "" {
		if _, err := loadCAPool(t.CAFile); err != nil {
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

// loadCAPool reads a PEM bundle holding at least one certificate.
func loadCAPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", file)
	}
	return pool, nil
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
	host, _, err := net.SplitHostPort(broker)
	if err != nil {
		return nil, fmt.Errorf("tls: broker %q: %w", broker, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if t.ServerName != "" {
		cfg.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pool, err := loadCAPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
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
