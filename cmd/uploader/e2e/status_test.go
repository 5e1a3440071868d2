package e2e

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"
)

// statusRecord is the part of a site's status record the suite reads.
type statusRecord struct {
	ClientID   string `json:"client_id"`
	State      string `json:"state"`
	QueueDepth int64  `json:"queue_depth"`
	CSQ        int    `json:"csq"`
	SupplyMV   int    `json:"supply_mv"`
}

// statusRecords decodes what the subscriber got on the status topic.
func statusRecords(t *testing.T, w watcher, topic string) []statusRecord {
	t.Helper()
	var out []statusRecord
	for _, d := range w.Deliveries() {
		if d.Topic != topic {
			continue
		}
		var r statusRecord
		if err := json.Unmarshal(d.Payload, &r); err != nil {
			t.Fatalf("status record on %s is not JSON: %v (%s)", topic, err, d.Garble)
		}
		out = append(out, r)
	}
	return out
}

// TestStatusAndWill: against mosquitto, a window publishes its status
// record right after CONNACK; a module that loses its power in the middle
// of a window (its connection ends without DISCONNECT) leaves the will,
// which mosquitto publishes; the next window's record follows it.
func TestStatusAndWill(t *testing.T) {
	requireE2E(t)
	brk := startMosquitto(t)
	s := newScenario(t, brk, "5")
	topic := "uploader/" + s.clientID + "/status"
	sub, err := subscribe(brk.addr, brokerUser, brokerPassword, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.close)
	waitStatus := func(n int, what string) []statusRecord {
		t.Helper()
		deadline := time.Now().Add(processTimeout)
		for {
			if recs := statusRecords(t, sub, topic); len(recs) >= n {
				return recs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d status records after %v", what, len(statusRecords(t, sub, topic)), processTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	s.enqueueLines(5)
	r := s.flushOnce()
	if r.code != 0 {
		t.Fatalf("window: %s", r)
	}
	recs := waitStatus(1, "after a clean window")
	if recs[0].State != "connected" || recs[0].ClientID != s.clientID || recs[0].QueueDepth != 5 || recs[0].CSQ == 0 || recs[0].SupplyMV == 0 {
		t.Errorf("status record %+v", recs[0])
	}

	// Power lost mid-window: the simulator process dies, its TCP
	// connection with it, with no DISCONNECT.
	s.enqueueLines(400)
	sim := startSimulator(t, "slow=30ms")
	flush := startUploader(t, nil, nil, s.windowArgs("flush", sim.path, brk.Addr())...)
	waitStatus(2, "during the second window")
	sim.p.signal(syscall.SIGKILL)
	sim.p.wait(15 * time.Second)
	if fr := flush.mustWait(t, processTimeout); fr.code == 0 {
		t.Errorf("a window whose module lost power succeeded: %s", fr)
	}
	recs = waitStatus(3, "after the power loss")
	if recs[1].State != "connected" || recs[2].State != "lost" {
		t.Errorf("records %+v, want the second window's and then its will", recs)
	}
	s.cleanWindow()
	recs = waitStatus(4, "after the next window")
	if recs[3].State != "connected" {
		t.Errorf("the next window's record %+v", recs[3])
	}
}

// enqueueLines stores n new readings on the scenario's topic in one call.
func (s *scenario) enqueueLines(n int) {
	s.t.Helper()
	if r := runUploader(s.t, processTimeout, linesInput(s.newIDs(n)), nil, s.enqueueArgs("--topic", s.prefix+"/lines", "--lines")...); r.code != 0 {
		s.t.Fatalf("enqueue: %s", r)
	}
}
