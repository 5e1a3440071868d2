package modem_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/modem"
	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// exampleEcho starts a loopback TCP echo server for the examples.
func exampleEcho() (host string, port int, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port, func() { ln.Close() }
}

// A whole uplink window: synchronise, radio on, register, bearer, one TCP
// connection used as a net.Conn, close, radio off. The simulated module
// runs over an in-memory pipe; on a board the port comes from OpenSerial.
func Example() {
	host, port, stop := exampleEcho()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hostEnd, moduleEnd := net.Pipe()
	sim, err := modemsim.Serve(ctx, moduleEnd, modemsim.Fast())
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	m := modem.New(hostEnd, modem.Options{QuickSend: true})
	defer m.Close()

	if err := m.Sync(ctx); err != nil {
		panic(err)
	}
	status, _ := m.SIMStatus(ctx)
	fmt.Println("SIM:", status)
	if err := m.SetFunctionality(ctx, 1); err != nil {
		panic(err)
	}
	reg, err := m.WaitRegistered(ctx, time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println("registered via", reg.Via, "stat", reg.Stat)
	ip, err := m.StartBearer(ctx, "nbiot", "", "")
	if err != nil {
		panic(err)
	}
	fmt.Println("bearer:", ip)

	conn, err := m.Dial(ctx, host, port)
	if err != nil {
		panic(err)
	}
	fmt.Println("chunk:", conn.MaxChunk())
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		panic(err)
	}
	if _, err := conn.Write([]byte("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c")); err != nil {
		panic(err)
	}
	echo := make([]byte, 12)
	if _, err := io.ReadFull(conn, echo); err != nil {
		panic(err)
	}
	fmt.Printf("echo: %x\n", echo)
	if err := conn.Close(); err != nil {
		panic(err)
	}
	if err := m.SetFunctionality(ctx, 0); err != nil {
		panic(err)
	}
	fmt.Println("CIPSEND chunks:", m.Stats().CIPSends)
	// Output:
	// SIM: READY
	// registered via CEREG stat 1
	// bearer: 10.78.245.128
	// chunk: 1460
	// echo: 100c00044d5154540402003c
	// CIPSEND chunks: 1
}

// Exec is the field-diagnostics path: any command, its raw answer.
func ExampleModem_Exec() {
	ctx := context.Background()
	hostEnd, moduleEnd := net.Pipe()
	sim, err := modemsim.Serve(ctx, moduleEnd, modemsim.Fast())
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	m := modem.New(hostEnd, modem.Options{})
	defer m.Close()
	if err := m.Sync(ctx); err != nil {
		panic(err)
	}
	resp, err := m.Exec(ctx, "AT+CSQ", time.Second)
	fmt.Println(resp.Lines, resp.Final, err)
	resp, err = m.Exec(ctx, "AT+CIPSTATUS", time.Second)
	fmt.Println(resp.Final, err)
	// Output:
	// [+CSQ: 20,99] OK <nil>
	// STATE: IP INITIAL <nil>
}
