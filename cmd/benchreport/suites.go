package main

import (
	"strconv"
	"strings"
	"time"
)

// Suite is one `go test` run of the report.
type Suite struct {
	Key  string
	Args []string // after "go test"
	Env  []string // added to the environment, shown before the command
	Skip bool     // left out with -quick
}

// Command is the suite as a shell command line, to be copied.
func (s Suite) Command() string {
	parts := append([]string(nil), s.Env...)
	parts = append(parts, "go", "test")
	for _, a := range s.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SuiteRun is what one suite produced.
type SuiteRun struct {
	Suite  Suite
	Took   time.Duration
	Raw    string
	Output *Output
}

// originalSample is how many readings the original method sends at most
// with -quick.
const originalSample = 1000

// suites lists the runs in the order they are made. With quick the
// original method stops at originalSample readings, the drain is left out
// and the repeated benchmarks run once.
func suites(quick bool) []Suite {
	windows := Suite{Key: "windows", Args: []string{"-run", "^$", "-bench", "NBIoTWindowVsOriginal", "-benchtime", "1x", "-timeout", "60m", "./uplink"}}
	if quick {
		windows.Env = []string{"UPLOADER_BENCH_ORIGINAL_MAX=" + strconv.Itoa(originalSample)}
	}
	count := func(n int) string {
		if quick {
			return "1"
		}
		return strconv.Itoa(n)
	}
	return []Suite{
		windows,
		{Key: "versions", Args: []string{"-run", "^$", "-bench", "NBIoTMQTTVersions", "-benchtime", "1x", "./uplink"}},
		{Key: "linerate", Args: []string{"-run", "^$", "-bench", "LineRate", "-benchtime", "1x", "./uplink"}},
		{Key: "drain", Args: []string{"-run", "^$", "-bench", "DrainMillion", "-benchtime", "1x", "-timeout", "60m", "./uplink"}, Skip: quick},
		{Key: "queue", Args: []string{"-run", "^$", "-bench", ".", "-benchmem", "./queue"}},
		{Key: "codec", Args: []string{"-run", "^$", "-bench", "AppendPublish|PahoPublishEncode|MochiPublishEncode|DecodePubacks", "-benchmem", "-count", count(5), "./codec"}},
		{Key: "session", Args: []string{"-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "10x", "-count", count(3), "./uplink/session"}},
		{Key: "modem", Args: []string{"-run", "^$", "-bench", "WriteThroughput", "-benchmem", "-benchtime", "5x", "-count", count(3), "./uplink/modem"}},
		{Key: "rx", Args: []string{"-run", "^$", "-bench", "RxURCPolicies", "-benchtime", "1x", "-timeout", "30m", "./uplink"}},
		{Key: "rxreal", Args: []string{"-run", "^$", "-bench", "RxRealTime", "-benchtime", "1x", "-timeout", "30m", "./uplink"}},
		{Key: "fleet", Args: []string{"-run", "^$", "-bench", "FleetSpread", "-benchtime", "1x", "./uplink"}},
		{Key: "pack", Args: []string{"-run", "^$", "-bench", "PackedWindowNBIoT|PackSize|PackMillion", "-benchtime", "1x", "./uplink"}},
	}
}
