package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nbiot-uploader/uploader/uplink"
)

func runCommand(e *env) *cli.Command {
	flags := concat(commonFlags(), queueFlags(), windowFlags(), scheduleFlags())
	cmd := command("run", "the daemon: run windows on --schedule until SIGTERM/SIGINT", "", flags, func(c *cli.Context) error {
		return runDaemon(c, e)
	})
	cmd.Description = "Logs one line per window. SIGTERM or SIGINT ends a running window cleanly (radio off) and exits 0."
	return cmd
}

func runDaemon(c *cli.Context, e *env) error {
	sched, err := schedule(c)
	if err != nil {
		return err
	}
	if sched == nil {
		return usagef("--schedule is required for run (e.g. \"0 * * * *\" or @hourly)")
	}
	if c.Int64("early-depth") < 0 {
		return usagef("--early-depth %d is negative", c.Int64("early-depth"))
	}
	log, cfg, q, err := windowSetup(c, e)
	if err != nil {
		return err
	}
	defer q.Close()
	lock, err := uplink.AcquireDaemonLock(q.Path())
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release() }()
	cfg.Holder = "uploader run"
	cfg.NextContact = func() time.Time { return sched.Next(time.Now()) }
	if cfg.Transport == uplink.TransportModem {
		// The module boots with its radio on; the daemon owns the radio
		// from its first second, not from its first window.
		if _, err := uplink.SwitchRadioOff(c.Context, cfg, "uploader run start-up"); err != nil {
			log.Warn("could not switch the radio off at start-up; the first window switches it off after it", "err", err)
		} else {
			log.Info("radio off until the first window")
		}
	}
	log.Info("uploader daemon started", "schedule", sched.Spec, "jitter_offset", sched.Offset(), "transport", cfg.Transport, "broker", cfg.Broker, "db", q.Path())
	d := &uplink.Daemon{
		Schedule:   sched,
		Logger:     log,
		EarlyDepth: c.Int64("early-depth"),
		Depth: func() (int64, error) {
			st, err := q.Stats()
			return st.Depth, err
		},
		Window: func(ctx context.Context) (uplink.Summary, error) {
			return uplink.RunWindow(ctx, cfg, q)
		},
		// The plan goes into the queue file, where status reads when the
		// site will next be heard.
		OnNext: func(p uplink.Plan) {
			if err := uplink.StorePlan(q, p); err != nil {
				log.Warn("could not store the next window's plan", "err", err)
			}
		},
	}
	err = d.Run(c.Context)
	log.Info("uploader daemon stopped")
	return err
}
