package uplink

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// PowerCommands switch the module's supply or PWRKEY through board-specific
// shell commands (GPIO sysfs, a relay tool, ...). When both are empty the
// radio is only switched with AT+CFUN and a hung module fails the window.
type PowerCommands struct {
	On  string // e.g. "echo 1 > /sys/class/gpio/gpio2/value"
	Off string
	// BootWait is how long the module needs after On before it answers AT
	// (≥ 4.5 s per the hardware manual).
	BootWait time.Duration
}

// Configured reports whether a power switch is available.
func (p PowerCommands) Configured() bool { return p.On != "" && p.Off != "" }

const powerCommandTimeout = 20 * time.Second

func runPowerCommand(ctx context.Context, which, command string) error {
	if strings.TrimSpace(command) == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, powerCommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("power %s command: %w (output: %s)", which, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// powerCycle cuts and restores the module's supply, honouring the
// datasheet's ≥ 2 s off time and the boot time before the UART answers.
func (p PowerCommands) powerCycle(ctx context.Context) error {
	if err := runPowerCommand(ctx, "off", p.Off); err != nil {
		return err
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	if err := runPowerCommand(ctx, "on", p.On); err != nil {
		return err
	}
	return sleepCtx(ctx, p.BootWait)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
