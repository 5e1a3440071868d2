package main

import (
	"bytes"
	"errors"
)

// The size section of BENCHMARKS.md is written by go run ./.ci/size -update
// (it cross-builds the board binary, which the benchmarks do not), between
// these two marker lines; the report keeps it as it is, at its end.
var (
	keptBegin = []byte("<!-- size: begin")
	keptEnd   = []byte("<!-- size: end -->")
)

// keepSection appends the size section of the old report, if it has one, to
// the new one.
func keepSection(old, report []byte) ([]byte, error) {
	begin := bytes.Index(old, keptBegin)
	if begin < 0 {
		return report, nil
	}
	if begin > 0 && old[begin-1] != '\n' {
		return nil, errors.New("the size section's begin marker is not at the start of a line")
	}
	n := bytes.Index(old[begin:], keptEnd)
	if n < 0 {
		return nil, errors.New("the size section has no end marker (" + string(keptEnd) + ")")
	}
	section := old[begin : begin+n+len(keptEnd)]
	trimmed := bytes.TrimRight(report, "\n")
	out := make([]byte, 0, len(trimmed)+2+len(section)+1) // never into report's array
	out = append(out, trimmed...)
	out = append(out, "\n\n"...)
	out = append(out, section...)
	return append(out, '\n'), nil
}
