package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"
)

// Report is everything the template renders.
type Report struct {
	Started, Finished time.Time
	Quick             bool
	Machine           Machine
	Runs              map[string]*SuiteRun

	Windows    []WindowRow
	Versions   []VersionRow
	Wire       []WireRow
	Throughput []ThroughputRow
	LineRate   []LineRateRow
	Queue      QueueFigures
	Drain      *DrainFigures // nil when skipped
	Codec      []CodecRow
	Modem      []ModemRow
	Fleet      []FleetRow
	Rx         []RxRow
	RxReal     []RxRealRow
	Pack       PackFigures
}

// Command is the suite's command line, for the template.
func (r *Report) Command(key string) string { return r.Runs[key].Suite.Command() }

// Took is how long the suite ran, for the template.
func (r *Report) Took(key string) string { return r.Runs[key].Took.Round(time.Second).String() }

// Codec1 is the codec row of the named benchmark.
func (r *Report) Codec1(name string) CodecRow {
	for _, c := range r.Codec {
		if c.Name == name {
			return c
		}
	}
	return CodecRow{}
}

// Row1000 is the 1,000-reading window, the headline.
func (r *Report) Row1000() WindowRow {
	for _, w := range r.Windows {
		if w.Readings == 1000 {
			return w
		}
	}
	return WindowRow{}
}

// PackSizeNames head the pack-size columns; the default is bold.
func (r *Report) PackSizeNames() []string {
	var names []string
	for _, s := range PackSizes {
		n := fmt.Sprintf("%d KiB", s>>10)
		if s == DefaultPackSize {
			n = "**" + n + "**"
		}
		names = append(names, n)
	}
	return names
}

// RawLines are the benchmark result lines of a suite as go test printed
// them, for the appendix.
func (r *Report) RawLines(key string) string {
	var lines []string
	for _, l := range strings.Split(r.Runs[key].Raw, "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
	}
	return strings.Join(lines, "\n")
}

// buildReport turns the suites' outputs into the report's tables. It names
// every missing figure.
func buildReport(runs map[string]*SuiteRun, m Machine, started, finished time.Time, quick bool) (*Report, error) {
	for _, s := range suites(quick) {
		if runs[s.Key] == nil {
			return nil, fmt.Errorf("no run of %s", s.Key)
		}
	}
	out := func(key string) *Output { return runs[key].Output }
	rep := &Report{Started: started, Finished: finished, Quick: quick, Machine: m, Runs: runs}
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	rep.Windows, err = windowRows(out("windows"))
	collect(err)
	rep.Versions, err = versionRows(out("versions"))
	collect(err)
	rep.LineRate, err = lineRateRows(out("linerate"))
	collect(err)
	rep.Queue, err = queueFigures(out("queue"))
	collect(err)
	if !runs["drain"].Suite.Skip {
		rep.Drain, err = drainFigures(out("drain"))
		collect(err)
	}
	rep.Codec, err = codecRows(out("codec"))
	collect(err)
	rep.Wire, err = wireRows(out("session"))
	collect(err)
	rep.Throughput, err = throughputRows(out("session"))
	collect(err)
	rep.Modem, err = modemRows(out("modem"))
	collect(err)
	rep.Fleet, err = fleetRows(out("fleet"))
	collect(err)
	rep.Rx, err = rxRows(out("rx"))
	collect(err)
	rep.RxReal, err = rxRealRows(out("rxreal"))
	collect(err)
	rep.Pack, err = packFigures(out("pack"), rep.Row1000())
	collect(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rep, nil
}

//go:embed report.md.tmpl
var reportTemplate string

var tmpl = template.Must(template.New("BENCHMARKS.md").Funcs(template.FuncMap{
	"num":  num,
	"sig":  sig,
	"span": spanText,
	"inum": func(v int) string { return num(float64(v), 0) },
	"keys": func() []string {
		var ks []string
		for _, s := range suites(false) {
			ks = append(ks, s.Key)
		}
		return ks
	},
	"div":  func(a, b float64) float64 { return a / b },
	"sub":  func(a, b float64) float64 { return a - b },
	"mul":  func(a, b float64) float64 { return a * b },
	"date": func(t time.Time) string { return t.Format("2006-01-02 15:04 UTC") },
	"meets": func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	},
}).Parse(reportTemplate))

func render(w io.Writer, rep *Report) error {
	if err := tmpl.Execute(w, rep); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}
