package main

import (
	"math"
	"strconv"
	"strings"
)

// num formats v with the given decimals and a comma between thousands:
// num(18020.4, 0) = "18,020".
func num(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// sig formats v with three or four significant digits, none after the
// point from 1,000 up: 0.16593 → "0.166", 9.434 → "9.43", 38.31 → "38.3",
// 165.74 → "165.7", 18020.4 → "18,020".
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return num(v, 0)
	case a >= 100:
		return num(v, 1)
	case a >= 10:
		return num(v, 1)
	case a >= 1:
		return num(v, 2)
	default:
		d := int(math.Ceil(-math.Log10(a))) + 2
		return num(v, min(d, 6))
	}
}

// spanText formats a range over repeated runs: "1.2–1.5", or one value when
// both ends round alike.
func spanText(s Span, decimals int) string {
	lo, hi := num(s.Lo, decimals), num(s.Hi, decimals)
	if lo == hi {
		return lo
	}
	return lo + "–" + hi
}
