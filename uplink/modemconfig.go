package uplink

import "fmt"

// validateModem checks the fields every holder of the modem needs (see
// OpenModem); Validate checks them too for the modem transport.
func (c *Config) validateModem() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Device == "":
		return bad("--device is empty (the modem's serial port, e.g. /dev/ttyS1)")
	case !isStandardBaud(c.Baud):
		return bad("--baud %d is not a standard rate (use one of %v)", c.Baud, StandardBauds)
	case c.LockPath == "":
		return bad("no modem lock path (it sits beside the queue)")
	case (c.Power.On == "") != (c.Power.Off == ""):
		return bad("--power-on-cmd and --power-off-cmd go together")
	case c.ModemLockTimeout < 0:
		return bad("--modem-lock-timeout is negative")
	}
	return nil
}

func (c *Config) holder() string {
	if c.Holder == "" {
		return "uploader window"
	}
	return c.Holder
}
