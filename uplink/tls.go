package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
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
	for _, f := range []struct{ flag, path string }{{"--ca-file", t.CAFile}, {"--cert-file", t.CertFile}, {"--key-file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		fh.Close()
	}
	return nil
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
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The error from crypto/tls names files, never key bytes.
			return nil, fmt.Errorf("tls: load client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
