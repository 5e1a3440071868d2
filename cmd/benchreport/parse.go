package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Result is one line of `go test -bench` output: a benchmark's name (without
// the -GOMAXPROCS suffix), its iteration count and every "value unit" pair —
// ns/op, B/op, allocs/op, MB/s and the benchmark's own b.ReportMetric units.
type Result struct {
	Pkg        string
	Name       string
	Iterations int64
	Metrics    map[string]float64
}

// Output is one parsed `go test -bench` run.
type Output struct {
	Results []Result
	// Header holds the "key: value" lines go test prints before the
	// results (goos, goarch, pkg, cpu).
	Header map[string]string
	// Failures are the lines that say a benchmark or the package failed.
	Failures []string
}

// Errors of Parse.
var (
	// ErrBenchFailed means the output reports a failed benchmark or package.
	ErrBenchFailed = errors.New("benchmark failed")
	// ErrMalformedLine means a result line does not hold "value unit" pairs.
	ErrMalformedLine = errors.New("malformed benchmark line")
)

// Parse reads standard benchmark output. procs is the GOMAXPROCS the
// benchmarks ran with: go test appends "-procs" to every name when it is
// above 1, and only then is the suffix removed (a name such as
// "quick-1460" must survive with GOMAXPROCS=1).
func Parse(r io.Reader, procs int) (*Output, error) {
	out := &Output{Header: map[string]string{}}
	suffix := ""
	if procs > 1 {
		suffix = "-" + strconv.Itoa(procs)
	}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "panic:"):
			out.Failures = append(out.Failures, line)
		case strings.HasPrefix(line, "Benchmark"):
			res, ok, err := parseResult(line, suffix)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			if ok {
				res.Pkg = pkg
				out.Results = append(out.Results, res)
			}
		default:
			if key, val, ok := strings.Cut(line, ": "); ok && isHeaderKey(key) {
				out.Header[key] = val
				if key == "pkg" {
					pkg = val
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	if len(out.Failures) > 0 {
		return out, fmt.Errorf("%w: %s", ErrBenchFailed, strings.Join(out.Failures, "; "))
	}
	return out, nil
}

func isHeaderKey(k string) bool {
	switch k {
	case "goos", "goarch", "pkg", "cpu":
		return true
	}
	return false
}

// parseResult parses "BenchmarkName-2  <iterations>  <value> <unit> ...".
// A line holding only a name (go test prints it before a benchmark's log
// output) is not a result: ok is false.
func parseResult(line, suffix string) (res Result, ok bool, err error) {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return Result{}, false, nil
	}
	iters, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		// "BenchmarkX-2 some log text": not a result line.
		return Result{}, false, nil
	}
	name := strings.TrimPrefix(fields[0], "Benchmark")
	if suffix != "" {
		name = strings.TrimSuffix(name, suffix)
	}
	pairs := fields[2:]
	if len(pairs)%2 != 0 {
		return Result{}, false, fmt.Errorf("%w: %s: odd number of value/unit fields in %q", ErrMalformedLine, name, line)
	}
	res = Result{Name: name, Iterations: iters, Metrics: make(map[string]float64, len(pairs)/2)}
	for i := 0; i < len(pairs); i += 2 {
		v, err := strconv.ParseFloat(pairs[i], 64)
		if err != nil {
			return Result{}, false, fmt.Errorf("%w: %s: value %q of %s: %w", ErrMalformedLine, name, pairs[i], pairs[i+1], err)
		}
		res.Metrics[pairs[i+1]] = v
	}
	return res, true, nil
}
