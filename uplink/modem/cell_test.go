package modem

import (
	"errors"
	"testing"
)

func TestParseCPSI(t *testing.T) {
	ci, err := ParseCPSI("+CPSI: LTE NB-IOT,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,0,0,-7,-77,-70,14")
	if err != nil {
		t.Fatal(err)
	}
	if ci.System != "LTE NB-IOT" || ci.Operator != "242-01" || ci.CellID != "18460008" || ci.Band != "EUTRAN-BAND20" ||
		*ci.RSRQ != -7 || *ci.RSRP != -77 || *ci.RSSI != -70 || *ci.SINR != 14 {
		t.Errorf("parsed %+v", ci)
	}
	ci, err = ParseCPSI("+CPSI: NO SERVICE,Online")
	if err != nil || ci.System != "NO SERVICE" || ci.RSRP != nil {
		t.Errorf("no service: %+v, %v", ci, err)
	}
	for _, bad := range []string{"+CSQ: 20,0", "+CPSI:", "+CPSI: LTE NB-IOT,Online,242-01,0xA411,1,2,B20,6352,0,0,x,-77,-70,14"} {
		if _, err := ParseCPSI(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("%q: err = %v, want ErrProtocol", bad, err)
		}
	}
}

// FuzzParseCPSI: whatever the module sends, parsing never panics and a
// parsed figure is in range.
func FuzzParseCPSI(f *testing.F) {
	f.Add("+CPSI: LTE NB-IOT,Online,242-01,0xA411,18460008,457,EUTRAN-BAND20,6352,0,0,-7,-77,-70,14")
	f.Add("+CPSI: NO SERVICE,Online")
	f.Add("+CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,-64,2304,255,255")
	f.Fuzz(func(t *testing.T, line string) {
		ci, err := ParseCPSI(line)
		if err != nil {
			return
		}
		for _, v := range []*int{ci.RSRQ, ci.RSRP, ci.RSSI, ci.SINR} {
			if v != nil && (*v < -200 || *v > 100) {
				t.Fatalf("figure %d out of range in %+v", *v, ci)
			}
		}
	})
}
