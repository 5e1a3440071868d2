package modemsim

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestProfileByName(t *testing.T) {
	tests := []struct {
		name string
		want Config
	}{
		{"fast", Fast()},
		{"nbiot", NBIoT()},
		{"ltem", LTEM()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProfileByName(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got.Baud != tt.want.Baud || got.RoundTrip != tt.want.RoundTrip || got.UplinkRate != tt.want.UplinkRate {
				t.Errorf("ProfileByName(%q)=%+v, want %+v", tt.name, got, tt.want)
			}
			if err := got.validate(); err != nil {
				t.Errorf("profile %q invalid: %v", tt.name, err)
			}
		})
	}
	if _, err := ProfileByName("5g"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("ProfileByName(5g) error = %v, want ErrUnknownProfile", err)
	}
}

// Ensure the nbiot profile carries the figures of performance-model.md §2.
func TestNBIoTProfileFigures(t *testing.T) {
	c := NBIoT()
	if c.Baud != 115200 || c.RoundTrip != time.Second || c.AttachDelay != 5*time.Second ||
		c.PDPDelay != time.Second || c.ConnectExtra != 200*time.Millisecond || c.UplinkRate != 2500 ||
		c.DownlinkRate != 2000 || c.Turnaround != 50*time.Millisecond || c.BootDelay != 4*time.Second {
		t.Errorf("NBIoT()=%+v differs from the performance model", c)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"NegativeBaud", func(c *Config) { c.Baud = -1 }},
		{"NegativeRoundTrip", func(c *Config) { c.RoundTrip = -time.Second }},
		{"SendLimitAbove1460", func(c *Config) { c.SendLimit = 1461 }},
		{"CSQ32", func(c *Config) { c.CSQ = 32 }},
		{"NegativeFault", func(c *Config) { c.Faults.HangAfterCommands = -2 }},
		{"BadRxURC", func(c *Config) { c.Variants.RxURC = 9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Fast()
			tt.edit(&cfg)
			a, _ := net.Pipe()
			defer a.Close()
			if _, err := Serve(context.Background(), a, cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Serve error = %v, want ErrInvalidConfig", err)
			}
			if _, err := Start(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Start error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// Ensure a zero Config is usable and a smaller send limit is enforced.
func TestConfigSendLimit(t *testing.T) {
	_, h := startPipe(t, Config{SendLimit: 100})
	b := newBroker(t)
	connectQuick(t, h, b, true)
	h.cmd("AT+CIPSEND?", "\r\n+CIPSEND: 100\r\n\r\nOK\r\n")
	h.cmd("AT+CIPSEND=101", "\r\nERROR\r\n")
	h.cmd("AT+CIPSEND", "\r\n> ")
	h.send(string(make([]byte, 101)))
	h.expect("\r\nERROR\r\n")
}

// Ensure Config.Dialer replaces the network, e.g. for an in-memory broker.
func TestConfigDialer(t *testing.T) {
	brokerEnd := make(chan net.Conn, 1)
	cfg := Fast()
	cfg.Dialer = func(_ context.Context, network, address string) (net.Conn, error) {
		if network != "tcp" || address != "broker.example:1883" {
			return nil, errors.New("unexpected address " + address)
		}
		a, b := net.Pipe()
		brokerEnd <- b
		return a, nil
	}
	_, h := startPipe(t, cfg)
	h.cmd("ATE0", "ATE0\r\r\nOK\r\n")
	h.cmd(`AT+CIPSTART="TCP","broker.example",1883`, "\r\nOK\r\n")
	h.expect("\r\nCONNECT OK\r\n")
	conn := <-brokerEnd
	defer conn.Close()
	h.cmd("AT+CIPSEND=2", "\r\n> ")
	h.send("hi")
	got := make([]byte, 2)
	if _, err := conn.Read(got); err != nil || string(got) != "hi" {
		t.Fatalf("broker read %q, %v", got, err)
	}
	h.expect("\r\nSEND OK\r\n")
}

// Ensure the module stops when the Serve context ends.
func TestServeContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, b := net.Pipe()
	defer b.Close()
	sim, err := Serve(ctx, a, Fast())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-sim.Done():
	case <-time.After(testTimeout):
		t.Fatal("module still running after its context ended")
	}
	if err := sim.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
