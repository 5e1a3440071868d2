// Command benchreport regenerates BENCHMARKS.md, the benchmark report of the
// uploader, from one run of its Go benchmarks:
//
//	go run ./cmd/benchreport            # the full report, about 5 minutes on 2 idle cores
//	go run ./cmd/benchreport -quick     # without the slowest items, about 2 minutes
//
// It runs `go test -run '^$' -bench ...` for the packages uplink, queue,
// codec, uplink/session and uplink/modem one after the other (never in
// parallel: the figures would disturb each other), parses the standard
// benchmark lines (name, iterations, ns/op and every custom "value unit"
// metric) and renders the report from a template: every table carries the
// exact command that produced it, and every figure of a table comes from
// the same run. The machine (Go version, GOOS/GOARCH, CPU model, CPU
// count), the date and the load average before and after are recorded.
//
// It exits non-zero, naming the problem, and leaves the old report alone
// when a benchmark fails or a figure the report needs is missing. The board
// binary size section, which go run ./.ci/size -update writes, is kept from
// the old report (see keep.go).
//
// Flags:
//
//	-out FILE   where to write the report (default BENCHMARKS.md)
//	-quick      skip the slowest items: the original method runs on at most
//	            1,000 readings of the 10,000-reading window (its per-reading
//	            cost is the same for every reading), the 1,000,000-reading
//	            drain is left out and the benchmarks otherwise repeated
//	            (-count) run once
//	-dir DIR    the module to benchmark (default: the current directory)
//	-raw DIR    also save each command's output as DIR/<table>.txt
//
// Package main must not be imported; it depends only on the standard
// library and runs the project's benchmarks through the go command.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(log)
	out := fs.String("out", "BENCHMARKS.md", "where to write the report")
	quick := fs.Bool("quick", false, "skip the slowest items (original method beyond 1,000 readings, the 1,000,000-reading drain, repeated runs)")
	dir := fs.String("dir", ".", "the module to benchmark")
	rawDir := fs.String("raw", "", "also save each command's output as DIR/<table>.txt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	started := time.Now().UTC()
	machine, err := describeMachine(*dir)
	if err != nil {
		return err
	}
	machine.LoadStart = readLoadavg()
	runs := make(map[string]*SuiteRun)
	var failures []error
	for _, s := range suites(*quick) {
		if s.Skip {
			runs[s.Key] = &SuiteRun{Suite: s}
			continue
		}
		fmt.Fprintf(log, "benchreport: %s\n", s.Command())
		r, err := runSuite(*dir, s, log)
		if err != nil {
			failures = append(failures, err)
		}
		if *rawDir != "" {
			if err := saveRaw(*rawDir, r); err != nil {
				failures = append(failures, err)
			}
		}
		runs[s.Key] = r
	}
	machine.LoadEnd = readLoadavg()
	if len(failures) > 0 {
		return fmt.Errorf("%w (%s left unchanged)", errors.Join(failures...), *out)
	}
	rep, err := buildReport(runs, machine, started, time.Now().UTC(), *quick)
	if err != nil {
		return fmt.Errorf("%w (%s left unchanged)", err, *out)
	}
	var buf bytes.Buffer
	if err := render(&buf, rep); err != nil {
		return err
	}
	old, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the old report: %w", err)
	}
	report, err := keepSection(old, buf.Bytes())
	if err != nil {
		return fmt.Errorf("%s: %w (left unchanged)", *out, err)
	}
	if err := os.WriteFile(*out, report, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(log, "benchreport: wrote %s (%s)\n", *out, time.Since(started).Round(time.Second))
	return nil
}

// runSuite runs one go test command in dir, echoing its output to log, and
// parses what it printed.
func runSuite(dir string, s Suite, log io.Writer) (*SuiteRun, error) {
	cmd := exec.Command("go", append([]string{"test"}, s.Args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), s.Env...)
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, log)
	cmd.Stderr = log
	start := time.Now()
	runErr := cmd.Run()
	r := &SuiteRun{Suite: s, Took: time.Since(start), Raw: stdout.String()}
	out, err := Parse(bytes.NewReader(stdout.Bytes()), runtime.GOMAXPROCS(0))
	r.Output = out
	switch {
	case runErr != nil:
		return r, fmt.Errorf("%s: %w", s.Command(), runErr)
	case err != nil:
		return r, fmt.Errorf("%s: %w", s.Command(), err)
	case len(out.Results) == 0:
		return r, fmt.Errorf("%s: no benchmark results", s.Command())
	}
	return r, nil
}

// saveRaw writes a suite's output, its command on the first line.
func saveRaw(dir string, r *SuiteRun) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("raw output: %w", err)
	}
	data := "# " + r.Suite.Command() + "\n" + r.Raw
	if err := os.WriteFile(filepath.Join(dir, r.Suite.Key+".txt"), []byte(data), 0o644); err != nil {
		return fmt.Errorf("raw output: %w", err)
	}
	return nil
}

// Machine is where the report was measured.
type Machine struct {
	GoVersion, GOOS, GOARCH, CPU string
	CPUs                         int
	LoadStart, LoadEnd           string
}

func describeMachine(dir string) (Machine, error) {
	cmd := exec.Command("go", "env", "GOVERSION", "GOOS", "GOARCH")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return Machine{}, fmt.Errorf("go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return Machine{}, fmt.Errorf("go env printed %q", out)
	}
	return Machine{GoVersion: f[0], GOOS: f[1], GOARCH: f[2], CPU: cpuModel(), CPUs: runtime.NumCPU()}, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// readLoadavg is the 1, 5 and 15 minute load averages.
func readLoadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
