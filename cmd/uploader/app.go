package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes, documented in README.md.
const (
	exitOK      = 0
	exitFailure = 1 // the window failed, the queue is busy, the modem did not answer ...
	exitUsage   = 2 // bad flags, bad configuration, bad input: nothing was written
)

// usageError marks errors that are the caller's to fix (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// env is what a command needs from the process: its streams and a logger.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is main without os.Exit, so tests run the whole app in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	app := newApp(e)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	code := exitFailure
	switch {
	case errors.As(err, new(usageError)):
		code = exitUsage
	case errors.As(err, &ec):
		code = ec.ExitCode()
	case isFlagError(err):
		code = exitUsage
	}
	fmt.Fprintf(stderr, "uploader: %s\n", oneLine(err.Error()))
	return code
}

// isFlagError recognises the errors urfave/cli returns for bad flags and
// arguments before our own code runs.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "invalid value", "flag needs an argument", "Required flag", "Required flags", "No help topic"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:  "uploader",
		Usage: "store sensor readings durably and send them in batched MQTT windows through a SIM7000 modem",
		Description: "Sensor scripts call 'uploader enqueue'; a cron-scheduled window ('uploader run', or 'uploader flush' by hand)\n" +
			"powers the radio on, sends everything queued over ONE TCP and ONE MQTT session, deletes exactly what the\n" +
			"broker acknowledged and powers the radio off. Every option is also an environment variable UPLOADER_<NAME>\n" +
			"and a key in the --config file (YAML or TOML); precedence: flag > environment > file > default.\n\n" +
			"Exit codes: 0 success, 1 runtime failure (window failed, queue or modem busy), 2 usage or bad input.",
		Reader:                 e.stdin,
		Writer:                 e.stdout,
		ErrWriter:              e.stderr,
		HideHelpCommand:        false,
		UseShortOptionHandling: false,
		// We map errors to exit codes ourselves (run), never os.Exit inside.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			enqueueCommand(e),
			flushCommand(e),
			runCommand(e),
			statusCommand(e),
			unpackCommand(e),
			bridgeCommand(e),
			quarantineCommand(e),
			inboxCommand(e),
			modemCommand(e),
			simulateCommand(e),
			demoCommand(e),
		},
	}
	return app
}

// newLogger logs to stderr as text, at the level the user chose.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
