package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, and what it
// accepts must be well formed.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, 2)
	}
	f.Add([]byte("BenchmarkX-2 \t1\t5 ns/op\t7\n"), 2)
	f.Add([]byte("BenchmarkX\t1\tNaN ns/op\t+Inf x\n--- FAIL: y\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, procs int) {
		out, err := Parse(bytes.NewReader(data), procs)
		if err != nil {
			if !errors.Is(err, ErrBenchFailed) && !errors.Is(err, ErrMalformedLine) && !strings.Contains(err.Error(), "read benchmark output") {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, r := range out.Results {
			if r.Metrics == nil {
				t.Fatalf("result %q without metrics map", r.Name)
			}
		}
		if len(out.Failures) != 0 {
			t.Fatalf("failures %q without an error", out.Failures)
		}
	})
}
