package uplink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// A fleet's attempts during a 6-hour broker outage, and its reconnections
// in the first minute after, stay within twice its normal rate: backoff
// retries at most once between two slots, and the slots are spread.
func TestFleetOutageStaysWithinTwiceNormalRate(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet simulation: 2,000 daemons over 12 simulated hours")
	}
	const sites = 2000
	const bucket = 5 * time.Minute
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		outageFrom, outageTo := start.Add(3*time.Hour), start.Add(9*time.Hour)
		end := start.Add(12 * time.Hour)
		var mu sync.Mutex
		attempts := map[int]int{} // bucket index -> windows started
		var firstMinuteAfter int
		ctx, cancel := context.WithDeadline(context.Background(), end)
		defer cancel()
		errLink := errors.New("tcp connect: connect fail")
		for i := range sites {
			s, err := ParseSchedule("@hourly", Spread{ClientID: fmt.Sprintf("site-%06d", i)})
			if err != nil {
				t.Fatal(err)
			}
			d := &Daemon{
				Schedule: s,
				Logger:   discardLogger(),
				Rand:     rand.New(rand.NewPCG(uint64(i), 99)),
				Window: func(context.Context) (Summary, error) {
					now := time.Now()
					mu.Lock()
					attempts[int(now.Sub(start)/bucket)]++
					if !now.Before(outageTo) && now.Before(outageTo.Add(time.Minute)) {
						firstMinuteAfter++
					}
					mu.Unlock()
					if !now.Before(outageFrom) && now.Before(outageTo) {
						return Summary{Outcome: OutcomeFailed}, errLink
					}
					return Summary{Outcome: OutcomeOK}, nil
				},
			}
			go func() { _ = d.Run(ctx) }()
		}
		<-ctx.Done()
		synctest.Wait()

		maxIn := func(from, to time.Time) int {
			m := 0
			for b := int(from.Sub(start) / bucket); b < int(to.Sub(start)/bucket); b++ {
				m = max(m, attempts[b])
			}
			return m
		}
		if testing.Verbose() {
			for b := 0; b < int(end.Sub(start)/bucket); b++ {
				t.Logf("%5v %d", time.Duration(b)*bucket, attempts[b])
			}
		}
		normal := maxIn(start.Add(time.Hour), outageFrom) // the first hour fills up
		outage := maxIn(outageFrom, outageTo)
		expected := float64(sites) * float64(bucket) / float64(time.Hour)
		perMinute := expected / 5
		t.Logf("windows per 5 min: expected %.0f, normal max %d, outage max %d (%.2fx normal); first minute after the outage: %d (%.2fx the expected %.1f per minute)",
			expected, normal, outage, float64(outage)/float64(normal), firstMinuteAfter, float64(firstMinuteAfter)/perMinute, perMinute)
		if float64(outage) > 2*float64(normal) {
			t.Errorf("outage max %d windows per 5 min, more than twice the normal max %d", outage, normal)
		}
		if float64(firstMinuteAfter) > 2*perMinute*float64(normal)/expected {
			t.Errorf("%d windows in the first minute after the outage, more than twice the normal rate", firstMinuteAfter)
		}
	})
}
