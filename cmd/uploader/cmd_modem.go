package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink"
	"github.com/nbiot-uploader/uploader/uplink/fault"
)

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

// holdModem holds the modem for fn the way every process does (see
// uplink.OpenModem): lock, a dead window's interrupted send dealt with,
// power on, port open and answering AT; afterwards the one teardown plan.
func holdModem(c *cli.Context, e *env, opts uplink.HoldOptions, fn func(ctx context.Context, m *uplink.Modem) error) error {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	cfg := uplink.Defaults()
	if err := modemConfig(c, &cfg); err != nil {
		return err
	}
	cfg.Logger = log
	if c.Bool("trace") {
		cfg.Trace = log
	}
	td, err := uplink.WithModem(c.Context, cfg, opts, fn)
	if errors.Is(err, uplink.ErrInvalidConfig) {
		return usageError{err}
	}
	if fault.StepOf(err) == uplink.StepSync {
		return fmt.Errorf("the modem on %s does not answer AT (check wiring, power and --baud): %w", cfg.Device, err)
	}
	if td.Err != nil {
		fmt.Fprintf(e.stdout, "radio off:      FAILED: %v\n", td.Err)
		if err == nil {
			err = td.Err
		}
	}
	return err
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
	// A raw command leaves the radio as the operator put it; a module on a
	// power switch is switched off again, as after every use.
	opts := uplink.HoldOptions{What: "uploader modem at", KeepRadio: c.String("power-off-cmd") == ""}
	return holdModem(c, e, opts, func(ctx context.Context, m *uplink.Modem) error {
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
	opts := uplink.HoldOptions{What: "uploader modem check", KeepRadio: c.Bool("keep-radio-on")}
	return holdModem(c, e, opts, func(ctx context.Context, m *uplink.Modem) error {
		w := e.stdout
		var problems []string
		sim, err := m.RadioOn(ctx)
		if fault.StepOf(err) == uplink.StepRadioOn {
			return err
		}
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
