//go:build !board

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input to bridge exits 2 with one line naming it, before any file is
// created or any connection made.
func TestBridgeBadInput(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "bridge.db")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no broker", []string{"--state", state}, "--broker is required"},
		{"no state", []string{"--broker", "127.0.0.1:1883"}, "--state is required"},
		{"bad broker", []string{"--broker", "no-port", "--state", state}, "no-port"},
		{"empty filter", []string{"--broker", "127.0.0.1:1883", "--state", state, "--subscribe", " , "}, "--subscribe is empty"},
		{"bad chunk", []string{"--broker", "127.0.0.1:1883", "--state", state, "--chunk", "0"}, "--chunk 0"},
		{"ca without tls", []string{"--broker", "127.0.0.1:1883", "--state", state, "--ca-file", "x.pem"}, "need --tls"},
		{"two passwords", []string{"--broker", "127.0.0.1:1883", "--state", state, "--password", "a", "--password-file", "b"}, "both set"},
		{"bad log level", []string{"--broker", "127.0.0.1:1883", "--state", state, "--log-level", "loud"}, "--log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runApp(t, "", append([]string{"bridge"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming %q", code, out, stderr, tc.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("more than one line of error: %q", stderr)
			}
			if _, err := os.Stat(state); err == nil {
				t.Errorf("bad input created the state file")
			}
		})
	}
}
