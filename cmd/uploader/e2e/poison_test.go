package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startMosquittoACL is startMosquitto with an ACL file: the suite's user
// may read and write everything except publish to denied.
func startMosquittoACL(t *testing.T, denied string) *mosquittoBroker {
	t.Helper()
	return startMosquittoWith(t, func(dir string) string {
		aclFile := filepath.Join(dir, "acl")
		acl := fmt.Sprintf("user %s\ntopic deny %s\ntopic readwrite #\n", brokerUser, denied)
		if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
			t.Fatal(err)
		}
		return "acl_file " + aclFile + "\n"
	})
}

// quarantineEntry is the part of `quarantine list --json` the suite reads.
type quarantineEntry struct {
	Seq     uint64 `json:"seq"`
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Reason  string `json:"reason"`
}

func (s *scenario) quarantineList() []quarantineEntry {
	s.t.Helper()
	r := runUploader(s.t, processTimeout, "", nil, "quarantine", "list", "--db", s.db, "--json", "--log-level", "warn")
	if r.code != 0 {
		s.t.Fatalf("quarantine list: %s", r)
	}
	var qs []quarantineEntry
	if err := json.Unmarshal([]byte(r.stdout), &qs); err != nil {
		s.t.Fatalf("quarantine list --json: %v\n%s", err, r.stdout)
	}
	return qs
}

// quarantinedCount reads `status --json`'s "quarantined".
func (s *scenario) quarantinedCount() int64 {
	s.t.Helper()
	r := runUploader(s.t, processTimeout, "", nil, "status", "--db", s.db, "--json", "--log-level", "warn")
	var st struct {
		Quarantined *int64 `json:"quarantined"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Quarantined == nil {
		s.t.Fatalf("status --json has no quarantined count: %s", r)
	}
	return *st.Quarantined
}

// enqueueOne stores one QoS 1 reading on topic and returns its id.
func (s *scenario) enqueueOne(topic string) string {
	s.t.Helper()
	id := s.newIDs(1)[0]
	if r := runUploader(s.t, processTimeout, "", nil, s.enqueueArgs("--topic", topic, "--qos", "1", payload(id))...); r.code != 0 {
		s.t.Fatalf("enqueue: %s", r)
	}
	return id
}

// flushOnce runs one window through a fresh simulator.
func (s *scenario) flushOnce() result {
	s.t.Helper()
	sim := startSimulator(s.t, "")
	r := s.flush(sim.path)
	s.checkRadioOff(sim.path)
	sim.stop(s.t)
	return r
}

// TestPoisonRecord: mosquitto with an ACL denying one topic, MQTT 5, queue
// [ok, denied, ok]. The window delivers both ok readings and quarantines
// the denied one (PUBACK 0x87) instead of leaving it to block or deleting
// it; the next window has nothing left to send; `quarantine retry` puts it
// back, and a window that then has only it to send is refused and fails.
// With MQTT 3.1.1 mosquitto acknowledges the denied PUBLISH and drops it,
// so the uploader deletes it as delivered: documented in the README.
func TestPoisonRecord(t *testing.T) {
	requireE2E(t)
	t.Run("mqtt5", func(t *testing.T) {
		brk := startMosquittoACL(t, "e2e/+/denied")
		s := newScenario(t, brk, "5")
		ok1 := s.enqueueOne(s.prefix + "/ok")
		denied := s.enqueueOne(s.prefix + "/denied")
		ok2 := s.enqueueOne(s.prefix + "/ok")
		s.led.confirm([]string{ok1, ok2})

		r := s.flushOnce()
		if r.code != 0 || !strings.Contains(r.stdout, "refused:        1 by the broker, 1 quarantined") {
			t.Fatalf("the window with one refused record must succeed and count it: %s", r)
		}
		qs := s.quarantineList()
		if len(qs) != 1 || qs[0].Seq != 2 || qs[0].Topic != s.prefix+"/denied" || qs[0].Payload != payload(denied) ||
			!strings.Contains(qs[0].Reason, "0x87") {
			t.Fatalf("quarantine = %+v, want seq 2 on %s/denied refused with 0x87", qs, s.prefix)
		}
		st := s.status()
		if st.Depth != 0 || s.quarantinedCount() != 1 {
			t.Errorf("after the window: depth %d, quarantined %d; want 0 and 1", st.Depth, s.quarantinedCount())
		}

		// Nothing left to send: the next window does not bring the radio
		// up (this simulator boots with it on, so flushOnce's radio check
		// does not apply).
		sim := startSimulator(t, "")
		r = s.flush(sim.path)
		sim.stop(t)
		if r.code != 0 || !strings.Contains(r.stdout, "outcome:        skipped") {
			t.Errorf("the next window must have nothing left to send: %s", r)
		}
		s.account(0, nil) // both ok readings once, the denied one never

		if r := runUploader(t, processTimeout, "", nil, "quarantine", "retry", "--db", s.db, "2"); r.code != 0 {
			t.Fatalf("quarantine retry 2: %s", r)
		}
		if st := s.status(); st.Depth != 1 || s.quarantinedCount() != 0 {
			t.Errorf("after retry: depth %d, quarantined %d; want 1 and 0", st.Depth, s.quarantinedCount())
		}
		r = s.flushOnce()
		st = s.status()
		if r.code != 1 || !strings.Contains(r.stderr, "nothing delivered: the broker refused every record") ||
			st.LastWindow == nil || st.LastWindow.Outcome != "failed" {
			t.Errorf("a window whose every record is refused must fail: %s; last window %+v", r, st.LastWindow)
		}
		if qs := s.quarantineList(); len(qs) != 1 || qs[0].Seq != 2 {
			t.Errorf("the retried record is not back in quarantine: %+v", qs)
		}
		if r := runUploader(t, processTimeout, "", nil, "quarantine", "drop", "--db", s.db, "7"); r.code != 1 || !strings.Contains(r.stderr, "seq 7") {
			t.Errorf("drop of an unknown seq must exit 1 naming it: %s", r)
		}
	})
	t.Run("mqtt3.1.1", func(t *testing.T) {
		brk := startMosquittoACL(t, "e2e/+/denied")
		s := newScenario(t, brk, "3.1.1")
		ok1 := s.enqueueOne(s.prefix + "/ok")
		s.enqueueOne(s.prefix + "/denied")
		ok2 := s.enqueueOne(s.prefix + "/ok")
		s.led.confirm([]string{ok1, ok2})
		r := s.flushOnce()
		if r.code != 0 {
			t.Fatalf("window: %s", r)
		}
		// mosquitto's PUBACK for the denied PUBLISH is all the uploader
		// sees: the record counts as delivered and leaves the queue.
		if st := s.status(); st.Depth != 0 || len(s.quarantineList()) != 0 || st.LastWindow == nil || st.LastWindow.Acked != 3 {
			t.Errorf("MQTT 3.1.1: depth %d, quarantine %+v, last window %+v; want the denied record acknowledged and deleted",
				st.Depth, s.quarantineList(), st.LastWindow)
		}
		s.account(0, nil) // and the broker dropped it
	})
}
