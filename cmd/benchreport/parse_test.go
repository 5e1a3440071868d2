package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		procs   int
		want    []Result
		header  map[string]string
		wantErr error
	}{
		{
			name: "custom metrics and the GOMAXPROCS suffix",
			input: "goos: linux\ngoarch: amd64\npkg: example.com/m/uplink\ncpu: AMD EPYC\n" +
				"BenchmarkLineRate/baud=57600-2         \t       1\t17962161044 ns/op\t         0.1901 fixed-cost-s\t        88.97 streaming-%-of-line\n" +
				"PASS\nok  \texample.com/m/uplink\t27.3s\n",
			procs: 2,
			want: []Result{{Pkg: "example.com/m/uplink", Name: "LineRate/baud=57600", Iterations: 1,
				Metrics: map[string]float64{"ns/op": 17962161044, "fixed-cost-s": 0.1901, "streaming-%-of-line": 88.97}}},
			header: map[string]string{"goos": "linux", "goarch": "amd64", "pkg": "example.com/m/uplink", "cpu": "AMD EPYC"},
		},
		{
			name:  "benchmem columns",
			input: "BenchmarkAppendPublish/v5-8 \t38160788\t        31.63 ns/op\t3287.93 MB/s\t       0 B/op\t       0 allocs/op\n",
			procs: 8,
			want: []Result{{Name: "AppendPublish/v5", Iterations: 38160788,
				Metrics: map[string]float64{"ns/op": 31.63, "MB/s": 3287.93, "B/op": 0, "allocs/op": 0}}},
			header: map[string]string{},
		},
		{
			name:   "GOMAXPROCS 1 keeps a name ending in a number",
			input:  "BenchmarkWriteThroughput/quick-1460 \t5\t534388281 ns/op\t94.86 line-%\n",
			procs:  1,
			want:   []Result{{Name: "WriteThroughput/quick-1460", Iterations: 5, Metrics: map[string]float64{"ns/op": 534388281, "line-%": 94.86}}},
			header: map[string]string{},
		},
		{
			name:   "a name line before log output is not a result",
			input:  "BenchmarkX-2\n    bench_test.go:10: hello\nBenchmarkX-2 \t1\t5 ns/op\n",
			procs:  2,
			want:   []Result{{Name: "X", Iterations: 1, Metrics: map[string]float64{"ns/op": 5}}},
			header: map[string]string{},
		},
		{
			name:    "a failed benchmark",
			input:   "--- FAIL: BenchmarkDrainMillion\n    drain_bench_test.go:300: window 1: boom\nFAIL\nexit status 1\n",
			procs:   2,
			wantErr: ErrBenchFailed,
		},
		{
			name:    "a panic ends the package with FAIL",
			input:   "BenchmarkX-2 \tpanic: runtime error: index out of range\n\ngoroutine 7 [running]:\nFAIL\texample.com/m/uplink\t0.2s\n",
			procs:   2,
			wantErr: ErrBenchFailed,
		},
		{
			name:    "an odd number of value and unit fields",
			input:   "BenchmarkX-2 \t1\t5 ns/op\t7\n",
			procs:   2,
			wantErr: ErrMalformedLine,
		},
		{
			name:    "a value that is not a number",
			input:   "BenchmarkX-2 \t1\tfive ns/op\n",
			procs:   2,
			wantErr: ErrMalformedLine,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Parse(strings.NewReader(tt.input), tt.procs)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(out.Results, tt.want) {
				t.Errorf("results\n got %+v\nwant %+v", out.Results, tt.want)
			}
			if !reflect.DeepEqual(out.Header, tt.header) {
				t.Errorf("header %v, want %v", out.Header, tt.header)
			}
		})
	}
}

// TestParseCapturedOutput parses the output of every command of the
// report as go test printed it (testdata/*.txt, saved with -raw).
func TestParseCapturedOutput(t *testing.T) {
	tests := []struct {
		file    string
		results int
		first   string
		metric  string
		value   float64
	}{
		{"windows.txt", 5, "NBIoTWindowVsOriginal/readings=1", "batched-radio-s/reading", 9.488},
		{"versions.txt", 1, "NBIoTMQTTVersions", "v5-seq-B/reading", 10.89},
		{"linerate.txt", 2, "LineRate/baud=57600", "streaming-%-of-line", 88.97},
		{"drain.txt", 1, "DrainMillion", "peak-heap-MiB", 5.439},
		{"queue.txt", 5, "EnqueueOne", "allocs/op", 196},
		{"codec.txt", 30, "AppendPublish/v3.1.1", "allocs/op", 0},
		{"session.txt", 66, "WireBytes/T20P20/N60/mqtt3.1.1", "B/record", 46.70},
		{"modem.txt", 12, "WriteThroughput/quick-1460", "line-%", 94.86},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out := parseFile(t, tt.file)
			if len(out.Results) != tt.results {
				t.Fatalf("%d results, want %d", len(out.Results), tt.results)
			}
			r := out.Results[0]
			if r.Name != tt.first {
				t.Errorf("first result %q, want %q", r.Name, tt.first)
			}
			if got, ok := r.Metrics[tt.metric]; !ok || got != tt.value {
				t.Errorf("%s = %v (present %v), want %v", tt.metric, got, ok, tt.value)
			}
			if out.Header["goos"] != "linux" || out.Header["pkg"] == "" {
				t.Errorf("header %v", out.Header)
			}
		})
	}
}

func parseFile(t *testing.T, name string) *Output {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := Parse(f, 2)
	if err != nil {
		t.Fatalf("Parse %s: %v", name, err)
	}
	return out
}
