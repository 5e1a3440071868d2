package modemsim_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"go.bug.st/serial"

	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

// A simulated module on a pseudo-terminal, driven through go.bug.st/serial
// exactly like the hardware.
func ExampleStart() {
	sim, err := modemsim.Start(modemsim.Fast())
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	port, err := serial.Open(sim.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(time.Second); err != nil {
		log.Fatal(err)
	}
	r := bufio.NewReader(port)
	for _, cmd := range []string{"ATE0", "AT+CSQ"} {
		if _, err := port.Write([]byte(cmd + "\r")); err != nil {
			log.Fatal(err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				log.Fatal(err)
			}
			if line == "\r\n" {
				continue
			}
			fmt.Printf("%q\n", line)
			if line == "OK\r\n" {
				break
			}
		}
	}
	// Output:
	// "ATE0\r\r\n"
	// "OK\r\n"
	// "+CSQ: 20,99\r\n"
	// "OK\r\n"
}

// Fault specs as `uploader simulate` takes them on its command line.
func ExampleParseFaults() {
	faults, err := modemsim.ParseFaults("error=cipsend:3, remote-close=500,slow=200ms")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(faults.ErrorOn, faults.ErrorOnNth, faults.RemoteCloseAfterBytes, faults.SlowAnswers)
	fmt.Println(faults)
	// Output:
	// CIPSEND 3 500 200ms
	// remote-close=500,error=CIPSEND:3,slow=200ms
}

// The nbiot profile on the virtual clock over an in-process pipe: a
// registration that takes 5 modelled seconds is measured at once.
func ExampleServe() {
	cfg := modemsim.NBIoT()
	cfg.VirtualClock = true
	cfg.StartRadioOff = true
	moduleEnd, hostEnd := net.Pipe()
	sim, err := modemsim.Serve(context.Background(), moduleEnd, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()

	r := bufio.NewReader(hostEnd)
	for _, cmd := range []string{"ATE0", "AT+CFUN=1", "AT+CEREG?", "AT+CFUN=0"} {
		if _, err := hostEnd.Write([]byte(cmd + "\r")); err != nil {
			log.Fatal(err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				log.Fatal(err)
			}
			if strings.HasPrefix(line, "+CEREG") {
				fmt.Println(strings.TrimSpace(line))
			}
			if line == "OK\r\n" {
				break
			}
		}
	}
	acct := sim.Accounting()
	fmt.Printf("radio on %.2f s, attach %.2f s, %d commands\n", acct.RadioOnSeconds, acct.AttachSeconds, acct.ATCommands)
	// Output:
	// +CEREG: 0,1
	// radio on 5.05 s, attach 5.00 s, 4 commands
}
