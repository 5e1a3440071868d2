package uplink

import (
	"fmt"
	"testing"
)

// BenchmarkFleetSpread places a fleet of client ids on @hourly, by the
// default hash and by --slot, and reports the busiest second and 10 s
// against a uniform spread (cmd/benchreport's fleet table).
func BenchmarkFleetSpread(b *testing.B) {
	for _, sites := range []int{1000, 100000} {
		for _, how := range []string{"hash", "slot"} {
			b.Run(fmt.Sprintf("sites=%d/%s", sites, how), func(b *testing.B) {
				var f FleetLoad
				for b.Loop() {
					var err error
					if f, err = FleetLoadOf("@hourly", sites, how == "slot"); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(f.MaxPerSecond), "max/s")
				b.ReportMetric(f.SecondRatio(), "x-uniform/s")
				b.ReportMetric(float64(f.MaxPer10s), "max/10s")
				b.ReportMetric(f.TenSecondRatio(), "x-uniform/10s")
				b.ReportMetric(float64(sites)/f.Interval.Seconds(), "uniform/s")
			})
		}
	}
}
