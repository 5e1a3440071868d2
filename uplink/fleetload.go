package uplink

import (
	"fmt"
	"time"
)

// FleetLoad is how a fleet's windows fall over one interval of a schedule:
// the busiest second and the busiest 10 s, against a perfectly uniform
// spread. cmd/benchreport prints it for BENCHMARKS.md.
type FleetLoad struct {
	Sites        int
	Interval     time.Duration
	MaxPerSecond int
	MaxPer10s    int
}

// SecondRatio is the busiest second against the uniform rate.
func (f FleetLoad) SecondRatio() float64 {
	return float64(f.MaxPerSecond) / (float64(f.Sites) / f.Interval.Seconds())
}

// TenSecondRatio is the busiest 10 s against the uniform rate.
func (f FleetLoad) TenSecondRatio() float64 {
	return float64(f.MaxPer10s) / (float64(f.Sites) * 10 / f.Interval.Seconds())
}

// FleetLoadOf places sites client ids "site-000000" ... (or, with slots,
// --slot i/sites) on spec and counts their window starts.
func FleetLoadOf(spec string, sites int, slots bool) (FleetLoad, error) {
	s, err := parseSpec(spec)
	if err != nil {
		return FleetLoad{}, err
	}
	interval := s.Interval()
	perSecond := map[int64]int{}
	for i := range sites {
		sp := Spread{ClientID: fmt.Sprintf("site-%06d", i)}
		if slots {
			sp = Spread{Slot: i, Slots: sites}
		}
		if err := s.place(sp); err != nil {
			return FleetLoad{}, err
		}
		perSecond[int64(s.Offset()/time.Second)]++
	}
	f := FleetLoad{Sites: sites, Interval: interval}
	secs := int64(interval / time.Second)
	for sec := range secs {
		f.MaxPerSecond = max(f.MaxPerSecond, perSecond[sec])
		window := 0
		for k := range int64(10) {
			window += perSecond[(sec+k)%secs]
		}
		f.MaxPer10s = max(f.MaxPer10s, window)
	}
	return f, nil
}
