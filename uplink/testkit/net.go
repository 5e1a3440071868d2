package testkit

import (
	"net"
	"testing"
)

// Listen returns a TCP listener on 127.0.0.1 with a port the kernel chose;
// it is closed when the test ends. Tests never listen beyond loopback.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// Port returns the TCP port of a listener from Listen.
func Port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// ClosedAddr returns a loopback address nothing listens on (a listener
// there was just closed), for tests of a refused connection.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}
