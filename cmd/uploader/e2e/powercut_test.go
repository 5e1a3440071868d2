package e2e

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// span tracks how long a kind of process usually lives, so kill moments
// drawn from [0, 1.2 × that) land in every phase of its life (start,
// bring-up, session, teardown) and a few runs still finish.
type span struct {
	avg time.Duration
}

func (sp *span) observe(d time.Duration) { sp.avg = (3*sp.avg + d) / 4 }

func (sp *span) draw(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(sp.avg*6/5) + 1))
}

// TestPowerCuts SIGKILLs a running `flush` at random moments, -e2e.kills times,
// while sensor scripts keep enqueueing and are themselves SIGKILLed
// mid-write now and then; then one clean window must leave nothing lost.
// A killed enqueue call must arrive whole or not at all (one call, one
// transaction). The seed is logged; -e2e.seed replays a run.
func TestPowerCuts(t *testing.T) {
	requireE2E(t)
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	kills := *flagKills
	t.Logf("seed %d (replay with -e2e.seed=%d), %d flush kills (-e2e.kills)", seed, seed, kills)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))

	s := newScenario(t, startMochi(t), "5")
	s.enqueueConcurrently(100, 1)
	sim := startSimulator(t, "")

	var (
		flushKilled, flushOK, flushFailed int
		enqKilled, enqSurvived, enqOK     int
		failures                          = map[string]int{}
		flushSpan                         = span{avg: 100 * time.Millisecond}
		enqSpan                           = span{avg: 20 * time.Millisecond}
	)
	for round := 0; flushKilled < kills; round++ {
		if round == 4*kills {
			t.Fatalf("only %d of %d flushes were still running at their kill moment", flushKilled, round)
		}
		// A sensor script writes while the window runs; one in three is
		// cut off at a random moment of its short life.
		ids := s.newIDs(10 + rng.IntN(30))
		enq := startUploader(t, strings.NewReader(s.ndjsonInput(ids, rng.IntN(2))), nil, s.enqueueArgs("--ndjson")...)
		enqKill := time.Duration(-1)
		if rng.IntN(3) == 0 {
			enqKill = enqSpan.draw(rng)
		}
		flush := startUploader(t, nil, nil, s.windowArgs("flush", sim.path, s.brk.Addr())...)
		flushKill := flushSpan.draw(rng)

		if enqKill >= 0 && !enq.wait(enqKill) {
			enq.signal(syscall.SIGKILL)
		}
		er := enq.mustWait(t, processTimeout)
		switch er.code {
		case 0:
			s.led.confirm(ids)
			enqSpan.observe(er.elapsed)
			if enqKill >= 0 {
				enqSurvived++ // it finished before its kill
			} else {
				enqOK++
			}
		case -1:
			s.led.uncertainCall(ids)
			enqKilled++
		default:
			t.Errorf("enqueue (not killed) failed: %s", er)
			s.led.uncertainCall(ids)
		}

		if !flush.wait(flushKill - time.Since(flush.start)) {
			flush.signal(syscall.SIGKILL)
		}
		fr := flush.mustWait(t, processTimeout)
		switch fr.code {
		case -1:
			flushKilled++
		case 0:
			flushOK++
			flushSpan.observe(fr.elapsed)
		default:
			flushFailed++
			flushSpan.observe(fr.elapsed)
			failures[lastLine(fr.stderr)]++
			if fr.code != 1 || strings.Contains(fr.stderr, "panic:") {
				t.Errorf("flush after a power cut: %s", fr)
			}
		}
	}
	t.Logf("typical lifetimes: flush %v, enqueue %v", flushSpan.avg.Round(time.Millisecond), enqSpan.avg.Round(time.Millisecond))
	t.Logf("flush: %d killed, %d finished ok before their kill, %d failed before their kill", flushKilled, flushOK, flushFailed)
	for msg, n := range failures {
		t.Logf("  %d× %s", n, msg)
	}
	t.Logf("enqueue: %d killed mid-write, %d finished before their kill, %d not killed", enqKilled, enqSurvived, enqOK)
	acc := sim.stop(t)
	t.Logf("simulator across the kills: %d TCP connections, %d AT commands, %d MQTT bytes up", acc.TCPConnections, acc.ATCommands, acc.MQTTBytesUp)

	s.cleanWindow()
	tl := s.account(1<<30, nil) // any record may have been in flight at a kill
	t.Logf("killed enqueue calls: %d of %d arrived whole, the rest not at all", tl.uncertainArrived, tl.uncertainCalls)
}
