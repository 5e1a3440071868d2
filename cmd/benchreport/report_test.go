package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

var (
	testStart  = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	testFinish = testStart.Add(5 * time.Minute)
	testHost   = Machine{GoVersion: "go1.26.8", GOOS: "linux", GOARCH: "amd64", CPU: "AMD EPYC", CPUs: 2, LoadStart: "0.73 0.91 1.54", LoadEnd: "0.50 0.75 1.36"}
)

// capturedRuns builds the suites' runs from testdata/<key>.txt, after edit
// (when set) rewrote a file's text.
func capturedRuns(t *testing.T, quick bool, edit func(key, text string) string) map[string]*SuiteRun {
	t.Helper()
	runs := make(map[string]*SuiteRun)
	for i, s := range suites(quick) {
		r := &SuiteRun{Suite: s, Took: time.Duration(i+1) * 7 * time.Second}
		runs[s.Key] = r
		if s.Skip {
			continue
		}
		data, err := os.ReadFile(filepath.Join("testdata", s.Key+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		r.Raw = string(data)
		if edit != nil {
			r.Raw = edit(s.Key, r.Raw)
		}
		out, err := Parse(strings.NewReader(r.Raw), 2)
		if err != nil {
			t.Fatalf("%s: %v", s.Key, err)
		}
		r.Output = out
	}
	return runs
}

func renderCaptured(t *testing.T, quick bool, edit func(key, text string) string) (string, error) {
	t.Helper()
	rep, err := buildReport(capturedRuns(t, quick, edit), testHost, testStart, testFinish, quick)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := render(&buf, rep); err != nil {
		t.Fatal(err)
	}
	return buf.String(), nil
}

// TestRenderGolden renders the full report from captured output and
// compares it with testdata/report.golden.md (go test -update rewrites it).
func TestRenderGolden(t *testing.T) {
	got, err := renderCaptured(t, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "report.golden.md"), []byte(got))
}

// replaceMetric rewrites one "value unit" pair of a benchmark's line.
func replaceMetric(text, bench, unit, value string) string {
	re := regexp.MustCompile(`(?m)^(Benchmark` + regexp.QuoteMeta(bench) + `-2\s.*?)\S+( ` + regexp.QuoteMeta(unit) + `)`)
	return re.ReplaceAllString(text, "${1}"+value+"${2}")
}

func dropMetric(text, bench, unit string) string {
	re := regexp.MustCompile(`(?m)^(Benchmark` + regexp.QuoteMeta(bench) + `-2\s.*?)\s+\S+ ` + regexp.QuoteMeta(unit))
	return re.ReplaceAllString(text, "${1}")
}

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		quick    bool
		edit     func(key, text string) string
		contains []string
		absent   []string
	}{
		{
			name:  "the original method sampled at 10,000 readings is marked",
			quick: true,
			contains: []string{
				"| 10,000 † |",
				"per-reading figures measured over 1,000 readings",
				"UPLOADER_BENCH_ORIGINAL_MAX=1000 go test -run '^$' -bench NBIoTWindowVsOriginal",
			},
		},
		{
			name:  "the original method run in full is not marked",
			quick: true,
			edit: func(key, text string) string {
				if key != "windows" {
					return text
				}
				return replaceMetric(text, "NBIoTWindowVsOriginal/readings=10000", "original-readings", "10000")
			},
			absent: []string{"†"},
		},
		{
			name:     "-quick leaves the drain out",
			quick:    true,
			contains: []string{"Skipped with `-quick`", "generated | 2026-11-25 15:00 UTC to 2026-11-25 15:05 UTC, with `-quick`"},
			absent:   []string{"peak Go heap MiB", "-bench DrainMillion"},
		},
		{
			name: "the full run reports the drain",
			contains: []string{
				"| 1,000,000 | 1 | **5.4** | **23.6** | 14.2 | 25.6 | 23.6 | 21,272 | 47.0 |",
				"go test -run '^$' -bench DrainMillion -benchtime 1x -timeout 60m ./uplink",
			},
		},
		{
			name: "a target that is missed says so",
			edit: func(key, text string) string {
				if key != "queue" {
					return text
				}
				return replaceMetric(text, "EnqueueBatch10k", "records/s", "150000")
			},
			contains: []string{"| 150,000 records/s | **not met** |"},
		},
		{
			name:     "the machine and the load are recorded",
			contains: []string{"| machine | AMD EPYC, 2 CPUs |", "| Go | go1.26.8 linux/amd64 |", "0.73 0.91 1.54 at the start, 0.50 0.75 1.36 at the end"},
		},
		{
			name: "the receive-polling table judges 1,000 readings (the median of three runs) and the polling share in every protocol",
			contains: []string{
				"| MQTT 3.1.1 | nbiot | 100 | never | 4.0 | 13.9 | 1.178 | 1.178–1.185 | 1.286 | 1.085 | 71 | 37 | 3 | 1.17 (met) |",
				"| MQTT 3.1.1 | nbiot | 1,000 | never | 4.0 | 41.7 | **1.054** (met) | 1.053–1.055 | 1.084 | 1.024 | 236 | 105 | 22 | 2.85 (met) |",
				"| MQTT 3.1.1 | nbiot | 10,000 | never | 4.0 | 320.0 | 1.007 | – | – | – | 307 | 803 | 202 | 3.41 (met) |",
				"| MQTT 5 | 20kbit-1s | 1,000 | never | 16.9 | 34.7 | **1.077** (met) | 1.074–1.077 | 1.142 | 1.049 | 249 | 92 | 19 | 2.97 (met) |",
				"| TLS | nbiot | 1,000 | once | 27.2 | 45.1 | **1.085** (met) | 1.076–1.088 | 1.108 | 1.131 | 218 | 114 | 29 | 3.48 (met) |",
			},
		},
		{
			name: "the real-time check judges every protocol, link and URC policy",
			contains: []string{
				"| protocol | link | URC policy | × bound | first window × bound |",
				"| TLS | nbiot | never | **1.092** (met) | 1.122 |",
				"go test -run '^$' -bench RxRealTime -benchtime 1x -timeout 30m ./uplink",
			},
		},
		{
			name: "a receive window that misses the goal says so",
			edit: func(key, text string) string {
				if key != "rx" {
					return text
				}
				return replaceMetric(text, "RxURCPolicies/proto=tls/link=nbiot/urc=once/readings=1000", "window/bound", "1.142")
			},
			contains: []string{"| TLS | nbiot | 1,000 | once | 27.2 | 45.1 | **1.142** (**not met**) | 1.076–1.088 | 1.108 | 1.131 | 218 | 114 | 29 | 3.48 (met) |"},
		},
		{
			name:     "the fleet table judges the hash at 100,000 sites",
			contains: []string{"| 100,000 | hash | 27.78 | 49 | 1.76 | 326 | **1.17** (met) |", "| 100,000 | `--slot` | 27.78 | 28 | 1.01 | 278 | 1.00 |"},
		},
		{
			name: "the pack table judges issue 16's goals against the original method of table (a)",
			contains: []string{
				"| (a) the original's 340-byte lines | 436.1 / 0.168 | **20.5 / 0.0192** | 21.3x | 8.7x | radio **522x** less than the original method's 10.02 s (met) |",
				"| **6.4x** | 2.6x | ≥ 4x fewer air bytes (met) |",
				"packed **0.87x** the air bytes of unpacked, ≤ 1.02x (met) |",
				"| (b) realistic noisy JSON (t, pm25, pm10, temp, rh) | 15.6 | 14.3 | 13.7 | 13.4 | 13.2 | 13.2 | 13.1 |",
				"**8.0 MiB** (goal ≤ 16 MiB: met)",
				"go test -run '^$' -bench 'PackedWindowNBIoT|PackSize|PackMillion' -benchtime 1x ./uplink",
			},
		},
		{
			name: "a pack goal that is missed says so",
			edit: func(key, text string) string {
				if key != "pack" {
					return text
				}
				text = replaceMetric(text, "PackedWindowNBIoT/payload=random", "packed-air-B/reading", "450.0")
				return replaceMetric(text, "PackMillion", "peak-heap-MiB", "17.5")
			},
			contains: []string{"packed **1.03x** the air bytes of unpacked, ≤ 1.02x (**not met**) |", "**17.5 MiB** (goal ≤ 16 MiB: **not met**)"},
		},
		{
			name: "the seq property and the alias share come from the same run",
			contains: []string{
				"the `seq` property takes 10.9 B/reading; without it the\nMQTT 5 stream would be 68.2 B/reading. 99.5 %",
				"| MQTT 3.1.1 | 99.8 | 4.0 | 103.7 | 116.5 | 0.0600 |",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderCaptured(t, tt.quick, tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.contains {
				if !strings.Contains(got, s) {
					t.Errorf("report lacks %q", s)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(got, s) {
					t.Errorf("report contains %q", s)
				}
			}
		})
	}
}

// TestBuildReportMissingFigures checks that every missing figure is named
// and nothing is rendered.
func TestBuildReportMissingFigures(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(key, text string) string
		names []string
	}{
		{
			name: "one custom metric",
			edit: func(key, text string) string {
				if key != "versions" {
					return text
				}
				return dropMetric(text, "NBIoTMQTTVersions", "v5-seq-B/reading")
			},
			names: []string{`NBIoTMQTTVersions "v5-seq-B/reading"`},
		},
		{
			name: "a whole benchmark, in two packages",
			edit: func(key, text string) string {
				switch key {
				case "drain":
					return "PASS\n"
				case "modem":
					return regexp.MustCompile(`(?m)^BenchmarkWriteThroughput/quick-1024-2.*$`).ReplaceAllString(text, "")
				}
				return text
			},
			names: []string{`DrainMillion "peak-heap-MiB"`, `DrainMillion "wall-s"`, `WriteThroughput/quick-1024 "line-%"`},
		},
		{
			name: "the downlink bytes of an MQTT 5 receive window",
			edit: func(key, text string) string {
				if key != "rx" {
					return text
				}
				return dropMetric(text, "RxURCPolicies/proto=5/link=nbiot/urc=every/readings=100", "down-B/reading")
			},
			names: []string{`RxURCPolicies/proto=5/link=nbiot/urc=every/readings=100 "down-B/reading"`},
		},
		{
			name: "a window size",
			edit: func(key, text string) string {
				if key != "windows" {
					return text
				}
				return regexp.MustCompile(`(?m)^BenchmarkNBIoTWindowVsOriginal/readings=10000-2.*$`).ReplaceAllString(text, "")
			},
			names: []string{`NBIoTWindowVsOriginal/readings=10000 "batched-radio-s/reading"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderCaptured(t, false, tt.edit)
			if !errors.Is(err, ErrMissingMetric) {
				t.Fatalf("error %v, want ErrMissingMetric", err)
			}
			for _, n := range tt.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error does not name %s:\n%v", n, err)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{num(18020.4, 0), "18,020"},
		{num(1234567.891, 2), "1,234,567.89"},
		{num(-1234.5, 1), "-1,234.5"},
		{num(999, 0), "999"},
		{num(0.0001, 2), "0.00"},
		{sig(0.16593), "0.166"},
		{sig(0.0599700), "0.0600"},
		{sig(9.434), "9.43"},
		{sig(38.31), "38.3"},
		{sig(165.74), "165.7"},
		{sig(1563.2), "1,563"},
		{sig(0), "0"},
		{spanText(Span{Lo: 1.21, Hi: 1.54, N: 3}, 1), "1.2–1.5"},
		{spanText(Span{Lo: 95.86, Hi: 95.88, N: 3}, 1), "95.9"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSuiteCommand(t *testing.T) {
	tests := []struct {
		suite Suite
		want  string
	}{
		{Suite{Args: []string{"-run", "^$", "-bench", "LineRate", "-benchtime", "1x", "./uplink"}},
			"go test -run '^$' -bench LineRate -benchtime 1x ./uplink"},
		{Suite{Args: []string{"-bench", "A|B", "./codec"}, Env: []string{"X=1"}},
			"X=1 go test -bench 'A|B' ./codec"},
		{Suite{Args: []string{"-bench", "it's"}}, `go test -bench 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := tt.suite.Command(); got != tt.want {
			t.Errorf("Command() = %s, want %s", got, tt.want)
		}
	}
}

func TestRunRejectsArguments(t *testing.T) {
	var log bytes.Buffer
	if err := run([]string{"extra"}, &log); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("run with a stray argument: %v", err)
	}
	if err := run([]string{"-nosuchflag"}, &log); err == nil {
		t.Error("run with an unknown flag succeeded")
	}
}
