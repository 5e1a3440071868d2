// Command uploader stores sensor readings in a durable on-disk queue and
// sends them in batches, in one low-power radio window, through a SIM7000
// modem to an MQTT broker. See README.md for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGHUP (the SSH session of a manual flush dropped), SIGINT and
	// SIGTERM all cancel the context, so a window ends the same clean way:
	// radio off, summary stored, nothing half-sent. Without SIGHUP here its
	// default action would kill the process in the middle of a window.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// The same dropped session closes the pipe a flush's output went
	// through (`uploader flush | tee log`); the runtime would then die of
	// SIGPIPE at the next log line. Notified, a write to a broken pipe is
	// only an error. (Notify, unlike Ignore, is not inherited by the power
	// commands the window runs.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
