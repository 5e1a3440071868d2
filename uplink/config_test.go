package uplink_test

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbiot-uploader/uploader/uplink"
)

// validConfig is a modem configuration Validate accepts.
func validConfig() uplink.Config {
	cfg := uplink.Defaults()
	cfg.Broker = "mqtt.example.org:8883"
	cfg.ClientID = "site-7"
	cfg.APN = "iot.example"
	cfg.LockPath = "/var/lib/uploader/queue.db.modem.lock"
	return cfg
}

// TestValidateFindsConfigErrorsBeforeTheRadioGoesOn: every error that
// needs no network is an ErrInvalidConfig from Validate, which RunWindow
// and the command line call before anything touches the modem.
func TestValidateFindsConfigErrorsBeforeTheRadioGoesOn(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	// A second key pair: its key belongs to another certificate.
	otherCert, otherKey := ca.issue(t, "site-8", nil, x509.ExtKeyUsageClientAuth)
	otherCertFile, otherKeyFile := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other.key")
	writePEM(t, otherCertFile, "CERTIFICATE", otherCert)
	writePEM(t, otherKeyFile, "PRIVATE KEY", otherKey)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("this is no PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory cannot be read as a file, even by root (file modes do
	// not stop root).
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	withTLS := func(cafile, cert, key string) func(*uplink.Config) {
		return func(c *uplink.Config) {
			c.TLS = uplink.TLSConfig{Enabled: true, CAFile: cafile, CertFile: cert, KeyFile: key}
		}
	}

	tests := []struct {
		name   string
		modify func(*uplink.Config)
		want   string // in the error; "" = valid
		hidden string // must not be in the error (a secret)
	}{
		{"valid modem config", func(*uplink.Config) {}, "", ""},
		{"valid mutual TLS", withTLS(ca.caFile, ca.clientCert, ca.clientKey), "", ""},
		{"valid TLS with only a CA", withTLS(ca.caFile, "", ""), "", ""},
		{"valid IPv4 broker", func(c *uplink.Config) { c.Broker = "127.0.0.1:1883" }, "", ""},
		{"valid IPv6 broker", func(c *uplink.Config) { c.Broker = "[::1]:1883" }, "", ""},
		{"valid underscore host", func(c *uplink.Config) { c.Broker = "_mqtt.example.org.:1883" }, "", ""},
		{"valid APN credentials", func(c *uplink.Config) { c.APNUser, c.APNPassword = "user", "p@ss,word;1" }, "", ""},
		{"valid bands", func(c *uplink.Config) { c.NetworkMode.Bands = `"NB-IOT",8,20` }, "", ""},
		{"valid APN on tcp without checks", func(c *uplink.Config) { c.Transport, c.APN = uplink.TransportTCP, "a\"b" }, "", ""},

		{"CA file missing", withTLS(missing, "", ""), "--ca-file: open " + missing, ""},
		{"CA file unreadable", withTLS(unreadable, "", ""), "--ca-file: read " + unreadable, ""},
		{"CA file not PEM", withTLS(notPEM, "", ""), "--ca-file " + notPEM + " holds no PEM certificate", ""},
		{"CA file holds only a key", withTLS(ca.clientKey, "", ""), "holds no PEM certificate", ""},
		{"cert file missing", withTLS("", missing, ca.clientKey), "--cert-file: open " + missing, ""},
		{"key file unreadable", withTLS("", ca.clientCert, unreadable), "--key-file: read " + unreadable, ""},
		{"cert file not PEM", withTLS("", notPEM, ca.clientKey), "--cert-file " + notPEM + " holds no PEM certificate", ""},
		{"key file not PEM", withTLS("", ca.clientCert, notPEM), "--key-file " + notPEM + " holds no PEM private key", ""},
		{"key file holds a certificate", withTLS("", ca.clientCert, ca.clientCert), "holds no PEM private key", ""},
		{"key of another certificate", withTLS("", ca.clientCert, otherKeyFile), "private key does not match public key", ""},
		{"certificate of another key", withTLS("", otherCertFile, ca.clientKey), "private key does not match public key", ""},
		{"cert without key", withTLS("", ca.clientCert, ""), "--cert-file and --key-file go together", ""},
		{"TLS files without --tls", func(c *uplink.Config) { c.TLS.CAFile = ca.caFile }, "need --tls", ""},

		{"quote in APN", func(c *uplink.Config) { c.APN = `iot"x` }, `--apn "iot\"x" contains a double quote`, ""},
		{"line feed in APN", func(c *uplink.Config) { c.APN = "iot\nAT+CFUN=1" }, "line feed", ""},
		{"carriage return in APN user", func(c *uplink.Config) { c.APNUser = "u\r" }, "--apn-user", ""},
		{"control byte in APN user", func(c *uplink.Config) { c.APNUser = "u\x1a" }, "control byte 0x1a", ""},
		{"non-ASCII APN", func(c *uplink.Config) { c.APN = "iöt" }, "non-ASCII byte 0xc3", ""},
		{"APN too long", func(c *uplink.Config) { c.APN = strings.Repeat("a", 51) }, "at most 50", ""},
		{"quote in APN password, not shown", func(c *uplink.Config) { c.APNUser, c.APNPassword = "u", `s3cr"et` },
			"--apn-password contains a double quote (byte 5)", "s3cr"},
		{"DEL in APN password, not shown", func(c *uplink.Config) { c.APNUser, c.APNPassword = "u", "s3cret\x7f" },
			"--apn-password: byte 7 (control byte 0x7f)", "s3cret"},
		{"APN user without APN", func(c *uplink.Config) { c.APN, c.APNUser = "", "user" }, "--apn-user and --apn-password need --apn", ""},
		{"APN password without APN", func(c *uplink.Config) { c.APN, c.APNPassword = "", "pw" }, "need --apn", "pw"},
		{"line break in bands", func(c *uplink.Config) { c.NetworkMode.Bands = "\"NB-IOT\",8\r\nAT+CFUN=1" }, "--bands", ""},

		{"broker without port", func(c *uplink.Config) { c.Broker = "mqtt.example.org" }, "want host:port", ""},
		{"broker URL", func(c *uplink.Config) { c.Broker = "mqtt://mqtt.example.org:1883" }, "--broker", ""},
		{"broker port out of range", func(c *uplink.Config) { c.Broker = "h:0" }, "1..65535", ""},
		{"space in broker host", func(c *uplink.Config) { c.Broker = "mqtt example.org:1883" }, "a space at byte 5", ""},
		{"quote in broker host", func(c *uplink.Config) { c.Broker = `mqtt"x:1883` }, "neither an IP address nor a host name", ""},
		{"non-ASCII broker host", func(c *uplink.Config) { c.Broker = "mqtt.exämple.org:1883" }, "non-ASCII byte 0xc3", ""},
		{"empty label in broker host", func(c *uplink.Config) { c.Broker = "mqtt..example.org:1883" }, "empty label", ""},
		{"bad broker host on tcp too", func(c *uplink.Config) { c.Transport, c.Broker = uplink.TransportTCP, "a b:1883" }, "neither an IP address", ""},
		{"IPv6 zone through the modem", func(c *uplink.Config) { c.Broker = "[fe80::1%eth0]:1883" }, "IPv6 zone", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, uplink.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("Validate() = %q is more than one line", err)
			}
			if tt.hidden != "" && strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("Validate() = %q shows the secret %q", err, tt.hidden)
			}
		})
	}
}

// FuzzValidateATStrings: whatever the APN strings and the broker address,
// Validate does not panic, and what it accepts for the modem can be put on
// an AT command line: printable ASCII without a double quote, within the
// module's lengths, and a broker that splits into a host and a port.
func FuzzValidateATStrings(f *testing.F) {
	f.Add("iot", "user", "pw", "mqtt.example.org:1883", `"NB-IOT",20`)
	f.Add("", "", "", "[::1]:1883", "")
	f.Add(`a"b`, "u\r\n", "p\x00", "h x:1", "\x1b")
	f.Add("iöt", "", "", "mqtt..x:1883", "")
	f.Fuzz(func(t *testing.T, apn, user, password, broker, bands string) {
		// A marker no other field's rendering can produce unless it holds
		// it, so a leak of the password into an error shows.
		const marker = "S3CR3T"
		password = marker + password
		cfg := validConfig()
		cfg.APN, cfg.APNUser, cfg.APNPassword, cfg.Broker = apn, user, password, broker
		cfg.NetworkMode.Bands = bands
		err := cfg.Validate()
		if err != nil {
			if !errors.Is(err, uplink.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, not an ErrInvalidConfig", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("Validate() = %q is more than one line", err)
			}
			if strings.Contains(err.Error(), marker) && !strings.Contains(apn+user+broker+bands, marker) {
				t.Fatalf("Validate() = %q shows the APN password", err)
			}
			return
		}
		quotable := func(s string, maxLen int) bool {
			if len(s) > maxLen {
				return false
			}
			for i := 0; i < len(s); i++ {
				if c := s[i]; c == '"' || c < 0x20 || c > 0x7e {
					return false
				}
			}
			return true
		}
		for _, s := range []string{apn, user, password} {
			if !quotable(s, 50) {
				t.Fatalf("Validate() accepted %q for AT+CSTT", s)
			}
		}
		if apn == "" && (user != "" || password != "") {
			t.Fatalf("Validate() accepted APN credentials without an APN")
		}
		if !quotable(strings.ReplaceAll(bands, `"`, ""), len(bands)) {
			t.Fatalf("Validate() accepted bands %q", bands)
		}
		host, _, err := net.SplitHostPort(broker)
		if err != nil || host == "" || !quotable(host, 255) {
			t.Fatalf("Validate() accepted broker %q (host %q, %v)", broker, host, err)
		}
	})
}
