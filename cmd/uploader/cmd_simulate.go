//go:build !board

package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink/modemsim"
)

func simulateCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration file (YAML, or TOML when it ends in .toml); keys are the flag names", EnvVars: envName("config")},
		strFlag("profile", "fast", "timing profile: fast (no delays), nbiot or ltem (figures of the performance model)"),
		strFlag("faults", "", "comma-separated faults, e.g. remote-close=500,hang=20,error=CIPSEND:3,garbage=5,reboot=30,pdp-deact=1000,connect-fail,no-registration,lose-data=800,slow=200ms,csq=5,late-prompt=3"),
		intFlag("csq", -1, "signal quality the module reports (0-31, 99 unknown; -1 = profile default)"),
		intFlag("sim-baud", -1, "serial pacing in baud (0 = unpaced; -1 = profile default)"),
		boolFlag("virtual-clock", "advance a virtual clock instead of sleeping for modelled delays"),
		strFlag("rx-urc", "once", "when the module announces received data with +CIPRXGET: 1: once (into an empty buffer), every (each arrival), repeat (each arrival, repeated every second until read) or never"),
		strFlag("log-level", "warn", "log level of the simulator"),
	}
	cmd := command("simulate", "run a simulated SIM7000 on a pseudo-terminal (prints its device path; runs until interrupted)", "", flags, func(c *cli.Context) error {
		return runSimulate(c, e)
	})
	cmd.Description = "Point uploader at the printed device: uploader flush --device /dev/pts/N --broker 127.0.0.1:1883 ...\n" +
		"The simulated module opens real TCP connections. On exit it prints its accounting as JSON."
	return cmd
}

func runSimulate(c *cli.Context, e *env) error {
	log, err := newLogger(e.stderr, c.String("log-level"))
	if err != nil {
		return err
	}
	cfg, err := modemsim.ProfileByName(c.String("profile"))
	if err != nil {
		return usagef("--profile: %v", err)
	}
	if spec := c.String("faults"); spec != "" {
		f, err := modemsim.ParseFaults(spec)
		if err != nil {
			return usagef("--faults: %v", err)
		}
		cfg.Faults = f
	}
	if v := c.Int("csq"); v >= 0 {
		if v > 31 && v != 99 {
			return usagef("--csq %d: use 0..31 or 99", v)
		}
		cfg.CSQ = v
	}
	if v := c.Int("sim-baud"); v >= 0 {
		cfg.Baud = v
	}
	policy, err := modemsim.ParseRxURCPolicy(c.String("rx-urc"))
	if err != nil {
		return usagef("--rx-urc: %v", err)
	}
	cfg.Variants.RxURC = policy
	cfg.VirtualClock = c.Bool("virtual-clock")
	cfg.Logger = log
	sim, err := modemsim.Start(cfg)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()
	fmt.Fprintln(e.stdout, sim.Path())
	fmt.Fprintf(e.stderr, "simulated SIM7000 (%s profile) on %s; Ctrl-C to stop\n", c.String("profile"), sim.Path())
	<-c.Done()
	acc := sim.Accounting()
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(acc)
}
