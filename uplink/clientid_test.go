package uplink

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// 100,000 realistic hostnames give 100,000 client ids of at most 23 bytes,
// whether the boards have a machine id or not.
func TestDefaultClientIDIsDistinctForAFleet(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var hosts []string
	mac := func(i uint64) string {
		return fmt.Sprintf("%02x%02x%02x%02x%02x%02x", 0xb8, 0x27, 0xeb, byte(i>>16), byte(i>>8), byte(i))
	}
	for i := range uint64(25000) {
		hosts = append(hosts,
			"rpi-3b-"+mac(i),                                   // sequential MACs
			"rpi-3b-"+mac(rnd.Uint64()&0xffffff),               // random MACs (duplicates possible, removed below)
			fmt.Sprintf("site-%06d", i),                        // short names
			fmt.Sprintf("air-quality-station-eu-west-%06d", i)) // identical prefixes past 23 bytes
	}
	distinct := map[string]bool{}
	for _, h := range hosts {
		distinct[h] = true
	}
	for _, machineIDs := range []bool{false, true} {
		ids := map[string]string{}
		i := 0
		for h := range distinct {
			mid := ""
			if machineIDs {
				mid = fmt.Sprintf("%032x", rnd.Uint64())
			}
			id := DefaultClientID(h, mid)
			if len(id) > maxClientID || len(id) == 0 {
				t.Fatalf("%q -> %q: %d bytes", h, id, len(id))
			}
			if other, dup := ids[id]; dup {
				t.Fatalf("machine ids %v: %q and %q share the client id %q", machineIDs, other, h, id)
			}
			ids[id] = h
			i++
		}
		t.Logf("machine ids %v: %d hostnames, %d distinct client ids", machineIDs, len(distinct), len(ids))
	}
}

func TestDefaultClientIDForms(t *testing.T) {
	tests := []struct{ host, machineID, want string }{
		{"site-7", "", "uploader-site-7"},
		{"", "", "uploader-site"},
		{"bad host/name\x00", "", "uploader-badhostname"},
	}
	for _, tt := range tests {
		if got := DefaultClientID(tt.host, tt.machineID); got != tt.want {
			t.Errorf("DefaultClientID(%q, %q) = %q, want %q", tt.host, tt.machineID, got, tt.want)
		}
	}
	// Stable, and boards sharing a hostname differ by machine id.
	a1 := DefaultClientID("raspberrypi", "4c4c4544004a4810805ab4c04f4b3132")
	a2 := DefaultClientID("raspberrypi", "4c4c4544004a4810805ab4c04f4b3132")
	b := DefaultClientID("raspberrypi", "0123456789abcdef0123456789abcdef")
	if a1 != a2 || a1 == b {
		t.Errorf("same machine %q/%q, other machine %q", a1, a2, b)
	}
	if want := "u-raspberrypi-"; a1[:len(want)] != want {
		t.Errorf("%q does not start with %q", a1, want)
	}
}
