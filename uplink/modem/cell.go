package modem

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// CellInfo is what AT+CPSI? says about the serving LTE cell. The signal
// figures are pointers: nil when the module does not report them (no
// service, GSM).
type CellInfo struct {
	System   string // "LTE NB-IOT", "LTE CAT-M1", "GSM", "NO SERVICE"
	Operator string // MCC-MNC, e.g. "242-01"
	TAC      string // tracking area code, e.g. "0xA411"
	CellID   string // E-UTRAN cell id
	Band     string // e.g. "EUTRAN-BAND20"
	RSRQ     *int   // dB
	RSRP     *int   // dBm
	RSSI     *int   // dBm
	SINR     *int   // dB (RSSNR)
}

// CellInfo asks AT+CPSI? for the serving cell and its signal.
func (m *Modem) CellInfo(ctx context.Context) (CellInfo, error) {
	line, err := m.queryPrefix(ctx, "AT+CPSI?", "+CPSI:", queryTimeout)
	if err != nil {
		return CellInfo{}, err
	}
	ci, err := ParseCPSI(line)
	return ci, stepErr("AT+CPSI?", err)
}

// ParseCPSI reads a "+CPSI:" line. The LTE form (SIM7000 manual, AT+CPSI)
// is System Mode, Operation Mode, MCC-MNC, TAC, SCellID, PCellID, Frequency
// Band, EARFCN, DL bandwidth, UL bandwidth, RSRQ, RSRP, RSSI, RSSNR; other
// forms ("NO SERVICE,Online", GSM) give only what they have.
func ParseCPSI(line string) (CellInfo, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "+CPSI:")
	if !ok {
		return CellInfo{}, fmt.Errorf("%w: %q is not a +CPSI line", ErrProtocol, line)
	}
	f := strings.Split(rest, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	ci := CellInfo{System: f[0]}
	if ci.System == "" {
		return CellInfo{}, fmt.Errorf("%w: %q has no system mode", ErrProtocol, line)
	}
	if !strings.HasPrefix(ci.System, "LTE") || len(f) < 14 {
		return ci, nil
	}
	ci.Operator, ci.TAC, ci.CellID, ci.Band = f[2], f[3], f[4], f[6]
	dst := []**int{&ci.RSRQ, &ci.RSRP, &ci.RSSI, &ci.SINR}
	for i, s := range f[10:14] {
		v, err := strconv.Atoi(s)
		if err != nil || v < -200 || v > 100 {
			return CellInfo{}, fmt.Errorf("%w: %q: field %d is not a signal figure", ErrProtocol, line, 11+i)
		}
		*dst[i] = &v
	}
	return ci, nil
}

// SupplyVoltage asks AT+CBC for the module's supply in millivolts
// ("+CBC: <bcs>,<bcl>,<voltage>").
func (m *Modem) SupplyVoltage(ctx context.Context) (int, error) {
	line, err := m.queryPrefix(ctx, "AT+CBC", "+CBC:", queryTimeout)
	if err != nil {
		return 0, err
	}
	v, ok := parseInt64s(line, "+CBC:", 3)
	if !ok || v[2] <= 0 || v[2] > 10000 {
		return 0, stepErr("AT+CBC", fmt.Errorf("%w: %q", ErrProtocol, line))
	}
	return int(v[2]), nil
}
