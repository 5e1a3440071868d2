package modem

import (
	"fmt"
	"io"
	"time"

	"go.bug.st/serial"
)

// serialReadTimeout bounds each blocking read so the reader goroutine
// notices Close even on drivers that do not interrupt a pending read.
const serialReadTimeout = 100 * time.Millisecond

// OpenSerial opens a serial device with go.bug.st/serial at the given baud,
// 8N1, no flow control, with a short read timeout so Modem.Close can stop
// the reader.
func OpenSerial(device string, baud int) (io.ReadWriteCloser, error) {
	if baud <= 0 {
		return nil, fmt.Errorf("open serial %s: %w: baud %d", device, ErrInvalidArgument, baud)
	}
	port, err := serial.Open(device, &serial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("open serial %s at %d baud: %w", device, baud, err)
	}
	if err := port.SetReadTimeout(serialReadTimeout); err != nil {
		_ = port.Close()
		return nil, fmt.Errorf("set read timeout on %s: %w", device, err)
	}
	return port, nil
}
