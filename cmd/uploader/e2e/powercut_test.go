package e2e

import (
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nbiot-uploader/uploader/uplink/testkit"
)

// calibrationRounds run whole windows first, to learn how long one lives.
const calibrationRounds = 3

// sessionStarted is what flush logs once the TCP connection to the broker
// is up; from then on a kill interrupts the MQTT session.
const sessionStarted = `msg="tcp connected"`

// span tracks how long a phase of a process usually lasts, so kill moments
// drawn from [0, 1.2 × that) land anywhere in it and a few runs still
// finish.
type span struct {
	avg time.Duration
}

func (sp *span) observe(d time.Duration) { sp.avg = (3*sp.avg + d) / 4 }

func (sp *span) draw(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(sp.avg*6/5) + 1))
}

// TestPowerCuts SIGKILLs a running `flush` at random moments, -e2e.kills
// times, while sensor scripts keep enqueueing and are themselves SIGKILLed
// mid-write now and then; then one clean window must leave nothing lost.
// Half of the kills fall anywhere in the flush's life, half in its MQTT
// session (after the TCP connection is up), where records are in flight.
// A killed enqueue call must arrive whole or not at all (one call, one
// transaction). The seed is logged; -e2e.seed replays a run.
//
// It is also the regression test of a bug it found: a flush killed after a
// CIPSEND prompt left the broker holding the first part of a PUBLISH that
// straddled two chunks, and the next flush's AT probes completed it into a
// corrupted reading the broker routed ("garbled" in the tally). Chunks now
// end on packet boundaries.
func TestPowerCuts(t *testing.T) {
	requireE2E(t)
	runPowerCuts(t, powerCuts{kills: *flagKills})
}

// TestPowerCutsLargeReadings is TestPowerCuts with readings of about 2 KB,
// so every PUBLISH takes two CIPSENDs, and with every kill aimed at the
// moment the flush sends the second of them: it marks the mark file
// first, and the simulator answers each command 20 ms late, so the kill
// lands between that CIPSEND and its prompt: the broker holds half a
// PUBLISH and the module waits for the rest. The next flush must not
// complete it: it waits out the broker's keep-alive (18 s for the 4 s
// here), so no reading arrives garbled. Without that wait this test finds
// garbled readings.
//
// It runs against mosquitto, which checks keep-alives only every 5-6 s (it
// dropped such a connection after 11-12 s, where MQTT says 6) and restarts
// a client's keep-alive while a large packet arrives in parts; a wait of
// 1.5 keep-alives and a little more once let a garbled reading through.
// uplink.TestWindowAfterDeathMidPublish covers mochi.
func TestPowerCutsLargeReadings(t *testing.T) {
	requireE2E(t)
	runPowerCuts(t, powerCuts{broker: startMosquitto(t), kills: max(4, *flagKills/12), pad: 2000, aimAtSplit: true,
		// The window timeout leaves room for the 18 s wait and the flush.
		flushArgs: []string{"--keepalive", "4", "--window-timeout", "45s"}, faults: "slow=20ms"})
}

type powerCuts struct {
	broker     broker // default: mochi
	kills      int
	pad        int      // reading size, see scenario.pad
	flushArgs  []string // added to every flush
	aimAtSplit bool     // kill when the mid-packet mark appears
	faults     string   // simulator faults during the kills
}

// midPacketMark starts what the mark file beside the modem lock holds while
// a PUBLISH larger than one chunk is half sent (uplink/midpacket.go).
const midPacketMark = "mid-packet until "

func runPowerCuts(t *testing.T, pc powerCuts) {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	kills := pc.kills
	t.Logf("seed %d (replay with -e2e.seed=%d), %d flush kills", seed, seed, kills)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))

	if pc.broker == nil {
		pc.broker = startMochi(t)
	}
	s := newScenario(t, pc.broker, "5")
	s.pad = pc.pad
	s.enqueueConcurrently(100, 1)
	simLog := "warn"
	if pc.aimAtSplit {
		simLog = "debug" // to see the CIPSEND arrive
	}
	sim := startSimulatorLogging(t, pc.faults, simLog)
	markFile := s.db + ".modem.midpacket"

	var (
		flushKilled, flushOK, flushFailed int
		killedInSession                   int // killed after the TCP connection was up
		killedMidSplit, waitedOut         int // killed with the mark set; flushes that waited it out
		filled                            int // flushes that found the module waiting for payload
		enqKilled, enqSurvived, enqOK     int
		failures                          = map[string]int{}
		lifeSpan                          = span{avg: 200 * time.Millisecond} // a flush, start to exit
		sessionSpan                       = span{avg: 30 * time.Millisecond}  // from sessionStarted to exit
		enqSpan                           = span{avg: 20 * time.Millisecond}
	)
	for round := 0; flushKilled < kills; round++ {
		if round == calibrationRounds+4*kills {
			t.Fatalf("only %d of %d flushes were still running at their kill moment", flushKilled, round)
		}
		// A sensor script writes while the window runs; one in three is
		// cut off at a random moment of its short life.
		ids := s.newIDs(20 + rng.IntN(60))
		enq := startUploader(t, strings.NewReader(s.ndjsonInput(ids, rng.IntN(2))), nil, s.enqueueArgs("--ndjson")...)
		enqKill := time.Duration(-1)
		if rng.IntN(3) == 0 {
			enqKill = enqSpan.draw(rng)
		}
		staleMark := readMark(markFile) // a killed flush's, until the next one clears it
		simLogFrom := sim.p.stderr.Len()
		flush := startUploader(t, nil, nil, s.windowArgs("flush", sim.path, s.brk.Addr(), pc.flushArgs...)...)
		inSession := rng.IntN(2) == 0
		atSplit := pc.aimAtSplit
		flushKill := lifeSpan.draw(rng)
		if inSession {
			flushKill = sessionSpan.draw(rng)
		}
		calibrating := round < calibrationRounds

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

		var sessionAt time.Time
		sessionSeen := false
		switch {
		case calibrating:
			sessionAt, sessionSeen = waitForOutput(flush, sessionStarted, processTimeout)
		case atSplit:
			if waitForNewMark(flush, markFile, staleMark, processTimeout) {
				killBeforePrompt(flush, sim, readMark(markFile), simLogFrom)
			}
		case inSession:
			if sessionAt, sessionSeen = waitForOutput(flush, sessionStarted, processTimeout); sessionSeen &&
				!flush.wait(time.Until(sessionAt.Add(flushKill))) {
				flush.signal(syscall.SIGKILL)
			}
		default:
			if !flush.wait(time.Until(flush.start.Add(flushKill))) {
				flush.signal(syscall.SIGKILL)
			}
		}
		fr := flush.mustWait(t, processTimeout)
		if strings.Contains(fr.stderr, "waiting for the broker to drop that connection") {
			waitedOut++
		}
		if strings.Contains(fr.stderr, "flushing a possibly pending CIPSEND") {
			filled++
		}
		switch fr.code {
		case -1:
			flushKilled++
			if m := readMark(markFile); m != "" && m != staleMark {
				killedMidSplit++
			}
			if strings.Contains(fr.stderr, sessionStarted) {
				killedInSession++
			}
		case 0:
			flushOK++
			lifeSpan.observe(fr.elapsed)
			if sessionSeen {
				sessionSpan.observe(flush.end.Sub(sessionAt))
			}
		default:
			flushFailed++
			failures[lastLine(fr.stderr)]++
			if fr.code != 1 || strings.Contains(fr.stderr, "panic:") {
				t.Errorf("flush after a power cut: %s", fr)
			}
		}
	}
	t.Logf("typical lifetimes: flush %v (MQTT session and teardown %v), enqueue %v",
		lifeSpan.avg.Round(time.Millisecond), sessionSpan.avg.Round(time.Millisecond), enqSpan.avg.Round(time.Millisecond))
	t.Logf("flush: %d killed (%d of them in the MQTT session), %d finished ok before their kill, %d failed before their kill",
		flushKilled, killedInSession, flushOK, flushFailed)
	for msg, n := range failures {
		t.Logf("  %d× %s", n, msg)
	}
	if kills >= 10 && killedInSession < kills/5 {
		t.Errorf("only %d of %d kills landed in the MQTT session, where records are in flight", killedInSession, kills)
	}
	if pc.aimAtSplit {
		t.Logf("%d kills left half a PUBLISH at the broker (mid-packet mark set); %d flushes waited out the broker's keep-alive first; %d found the module waiting for payload",
			killedMidSplit, waitedOut, filled)
		if killedMidSplit == 0 {
			t.Errorf("no kill landed in the middle of a split PUBLISH; the test proved nothing about it")
		}
	}
	t.Logf("enqueue: %d killed mid-write, %d finished before their kill, %d not killed", enqKilled, enqSurvived, enqOK)
	acc := sim.stop(t)
	t.Logf("simulator across the kills: %d TCP connections, %d AT commands, %d MQTT bytes up", acc.TCPConnections, acc.ATCommands, acc.MQTTBytesUp)

	s.cleanWindow()
	tl := s.account(1<<30, nil) // any record may have been in flight at a kill
	t.Logf("killed enqueue calls: %d of %d arrived whole, the rest not at all", tl.uncertainArrived, tl.uncertainCalls)
}

// killBeforePrompt SIGKILLs p once the simulator has logged the CIPSEND
// that follows the mid-packet mark: with the simulator's answers 20 ms
// late, p dies before the prompt, and the module then waits for a chunk
// nobody sends. That CIPSEND is the first the simulator logs at or after
// the moment the mark was written (its time minus its hold). If none shows
// within 300 ms (the flush died or hung), p is killed anyway.
func killBeforePrompt(p *proc, sim *simulator, mark string, from int) {
	if markedAt, ok := markTime(mark); ok {
		// Wakes on each line the simulator logs.
		sim.p.stderr.WaitUntil(300*time.Millisecond, func(log string) bool {
			return cipsendSince(log[min(from, len(log)):], markedAt)
		})
	}
	p.signal(syscall.SIGKILL)
}

// markTime is when a mid-packet mark line was written: its time minus its
// hold.
func markTime(mark string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(mark), midPacketMark)
	if !ok {
		return time.Time{}, false
	}
	at, holdText, ok := strings.Cut(rest, " hold ")
	until, err1 := time.Parse(time.RFC3339Nano, at)
	hold, err2 := time.ParseDuration(holdText)
	if !ok || err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	return until.Add(-hold), true
}

// cipsendSince reports whether the simulator's debug log holds an
// AT+CIPSEND=<n> received at or after t (its times are in milliseconds).
func cipsendSince(log string, t time.Time) bool {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `line="AT+CIPSEND=`) {
			continue
		}
		stamp, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, stamp); err == nil && !at.Before(t.Truncate(time.Millisecond)) {
			return true
		}
	}
	return false
}

// readMark returns the mid-packet mark line of the mark file, or "".
func readMark(path string) string {
	b, _ := os.ReadFile(path)
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, midPacketMark) {
			return line
		}
	}
	return ""
}

// waitForNewMark polls the mark file at path while p runs until it holds a
// mid-packet mark other than stale, one p wrote; it reports whether it
// did before p exited.
func waitForNewMark(p *proc, path, stale string, timeout time.Duration) bool {
	// A file gives no event: poll it, finely, as the kill must land
	// between the mark and the next chunk.
	marked := false
	testkit.PollEvery(500*time.Microsecond, timeout, func() bool {
		if m := readMark(path); m != "" && m != stale {
			marked = true
		}
		return marked || p.exited()
	})
	return marked
}

// waitForOutput waits for want on p's stderr until p exits or timeout
// passes; it returns when want was first seen.
func waitForOutput(p *proc, want string, timeout time.Duration) (time.Time, bool) {
	if !p.waitStderr(want, timeout) {
		return time.Time{}, false
	}
	return time.Now(), true
}
