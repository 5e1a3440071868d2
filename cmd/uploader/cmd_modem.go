package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/modem"
)

func modemFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("device", "/dev/ttyS1", "the modem's serial port"),
		intFlag("baud", 115200, "serial rate"),
		durFlag("modem-lock-timeout", 30*time.Second, "how long to wait for another process using the modem"),
		boolFlag("trace", "log every AT line in and out at debug level"),
	}
}

func modemCommand(e *env) *cli.Command {
	checkFlags := concat(commonFlags(), modemFlags(), []cli.Flag{
		durFlag("registration-timeout", time.Minute, "longest wait for network registration"),
		boolFlag("keep-radio-on", "leave the radio on afterwards (default: AT+CFUN=0)"),
	})
	atFlags := concat(commonFlags(), modemFlags(), []cli.Flag{
		durFlag("timeout", 10*time.Second, "longest wait for the final answer"),
	})
	return &cli.Command{
		Name:  "modem",
		Usage: "field diagnostics of the SIM7000",
		Subcommands: []*cli.Command{
			command("check", "SIM, signal, registration, network mode, operator and firmware", "", checkFlags, func(c *cli.Context) error {
				return runModemCheck(c, e)
			}),
			command("at", "send one raw AT command and print the answer", `"AT+…"`, atFlags, func(c *cli.Context) error {
				return runModemAT(c, e)
			}),
		},
	}
}

// withModem holds the modem lock, opens and synchronises the module, runs fn.
func withModem(c *cli.Context, e *env, what string, fn func(ctx context.Context, m *modem.Modem) error) error {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	baud := c.Int("baud")
	ok := false
	for _, b := range uplink.StandardBauds {
		ok = ok || b == baud
	}
	if !ok {
		return usagef("--baud %d is not a standard rate (use one of %v)", baud, uplink.StandardBauds)
	}
	ctx := c.Context
	lock, err := uplink.AcquireModemLock(ctx, modemLockPath(c), what, c.Duration("modem-lock-timeout"))
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := lock.AwaitMidPacket(ctx, log); err != nil {
		return err
	}
	port, err := modem.OpenSerial(c.String("device"), baud)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.String("device"), err)
	}
	opts := modem.Options{Logger: log}
	if c.Bool("trace") {
		opts.Trace = log
	}
	m := modem.New(port, opts)
	defer m.Close()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := m.Sync(sctx); err != nil {
		return fmt.Errorf("the modem on %s does not answer AT (check wiring, power and --baud): %w", c.String("device"), err)
	}
	return fn(ctx, m)
}

func runModemAT(c *cli.Context, e *env) error {
	if c.NArg() != 1 {
		return usagef(`give exactly one command, e.g. uploader modem at "AT+CSQ"`)
	}
	line := strings.TrimSpace(c.Args().First())
	if len(line) < 2 || !strings.EqualFold(line[:2], "AT") {
		return usagef("%q is not an AT command (it must start with AT)", line)
	}
	if strings.ContainsAny(line, "\r\n\x1a\x1b") {
		return usagef("the command must be one line without control characters")
	}
	return withModem(c, e, "uploader modem at", func(ctx context.Context, m *modem.Modem) error {
		resp, err := m.Exec(ctx, line, c.Duration("timeout"))
		for _, l := range resp.Lines {
			fmt.Fprintln(e.stdout, l)
		}
		if resp.Final != "" {
			fmt.Fprintln(e.stdout, resp.Final)
		}
		return err
	})
}

func runModemCheck(c *cli.Context, e *env) error {
	return withModem(c, e, "uploader modem check", func(ctx context.Context, m *modem.Modem) error {
		w := e.stdout
		var problems []string
		if !c.Bool("keep-radio-on") {
			defer func() {
				offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
				defer cancel()
				if err := m.SetFunctionality(offCtx, 0); err != nil {
					fmt.Fprintf(w, "radio off:      FAILED: %v\n", err)
				}
			}()
		}
		if err := m.SetFunctionality(ctx, 1); err != nil {
			return fmt.Errorf("radio on (AT+CFUN=1): %w", err)
		}
		sim, err := waitSIM(ctx, m)
		if err != nil {
			fmt.Fprintf(w, "SIM:            NOT READY (%v) — check the SIM is inserted the right way and has no PIN\n", err)
			problems = append(problems, "SIM not ready")
		} else {
			fmt.Fprintf(w, "SIM:            %s\n", sim)
		}
		rssi, _, err := m.SignalQuality(ctx)
		if err != nil {
			fmt.Fprintf(w, "signal:         unknown (%v)\n", err)
		}
		reg, rerr := m.WaitRegistered(ctx, c.Duration("registration-timeout"))
		if rerr != nil {
			fmt.Fprintf(w, "registration:   NOT REGISTERED after %s (%v) — check APN/SIM coverage for the chosen network mode and bands\n", describeDuration(reg.Waited), rerr)
			problems = append(problems, "not registered")
		} else {
			fmt.Fprintf(w, "registration:   registered (%s, %s) after %s\n", reg.Via, orUnknown(reg.Technology), describeDuration(reg.Waited))
			if r2, _, err := m.SignalQuality(ctx); err == nil {
				rssi = r2
			}
		}
		fmt.Fprintf(w, "signal:         CSQ %s%s\n", csqText(rssi), csqAdvice(rssi))
		if rssi < 14 || rssi == 99 {
			problems = append(problems, "weak signal")
		}
		info, err := m.Info(ctx)
		if err != nil {
			fmt.Fprintf(w, "info:           incomplete (%v)\n", err)
		}
		fmt.Fprintf(w, "network mode:   %s\n", orUnknown(info.NetworkMode))
		fmt.Fprintf(w, "operator:       %s\n", orUnknown(info.Operator))
		if info.CPSI != "" {
			fmt.Fprintf(w, "cell:           %s\n", info.CPSI)
		}
		fmt.Fprintf(w, "model:          %s\n", orUnknown(info.Model))
		fmt.Fprintf(w, "firmware:       %s\n", orUnknown(info.Firmware))
		if info.IMEI != "" {
			fmt.Fprintf(w, "IMEI:           %s\n", info.IMEI)
		}
		if len(problems) > 0 {
			return errors.New("modem check found: " + strings.Join(problems, ", "))
		}
		return nil
	})
}

func waitSIM(ctx context.Context, m *modem.Modem) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := m.SIMStatus(ctx)
		if err == nil || !time.Now().Before(deadline) || ctx.Err() != nil {
			return s, err
		}
		select {
		case <-ctx.Done():
			return s, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// csqAdvice is the field rule of thumb for NB-IoT/Cat-M installs.
func csqAdvice(csq int) string {
	switch {
	case csq == 99 || csq < 0:
		return " — no signal measured: check the antenna is connected"
	case csq < 10:
		return " — very weak: move or re-aim the antenna, or raise it"
	case csq < 14:
		return " — weak (below about 14): move or re-aim the antenna for reliable windows"
	default:
		return " — good"
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
