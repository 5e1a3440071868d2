package modemsim

import (
	"fmt"
	"slices"
)

// CIP stack states as AT+CIPSTATUS prints them (single connection mode).
const (
	stateInitial    = "IP INITIAL"
	stateStart      = "IP START"
	stateConfig     = "IP CONFIG"
	stateGPRSAct    = "IP GPRSACT"
	stateStatus     = "IP STATUS"
	stateConnecting = "TCP CONNECTING"
	stateConnected  = "CONNECT OK"
	stateClosed     = "TCP CLOSED"
	statePDPDeact   = "PDP DEACT"
)

// volatileSettings are lost at every boot.
type volatileSettings struct {
	echo          bool
	cmee          int
	cfun          int
	cregN         int
	cgregN        int
	ceregN        int
	attachAllowed bool // AT+CGATT=0 clears it
	ip            string
	rxManual      bool // AT+CIPRXGET=1
	quickSend     bool // AT+CIPQSEND=1
	head          bool // AT+CIPHEAD=1
	sendHex       bool // AT+CIPSENDHEX=1
	apn           string
	user          string
	pass          string
	batchk        int
	clts          int
	autobaud      autobaudState
}

// autobaudState tracks rate detection after a boot in autobaud mode.
type autobaudState int

const (
	autobaudHunting  autobaudState = iota // discarding input until "AT"
	autobaudSawA                          // the previous byte was 'A' or 'a'
	autobaudSyncLine                      // locked; dropping the rest of the sync line
	autobaudLocked
)

func defaultVolatile() volatileSettings {
	return volatileSettings{echo: true, attachAllowed: true, ip: stateInitial, apn: "CMNET"}
}

// savedSettings are AUTO_SAVE parameters: they survive a reboot.
type savedSettings struct {
	ipr      int
	cnmp     int
	cmnb     int
	bands    map[string]string
	csclk    int
	psmMode  int
	psmT3412 string
	psmT3324 string
}

func defaultSaved() savedSettings {
	return savedSettings{
		ipr:  115200,
		cnmp: 2,
		cmnb: 3,
		bands: map[string]string{
			"CAT-M":  "1,2,3,4,5,8,12,13,18,19,20,26,28,39",
			"NB-IOT": "1,2,3,5,8,12,13,17,18,19,20,26,28",
		},
		psmT3412: "01011111",
		psmT3324: "00000001",
	}
}

var validIPR = []int{0, 9600, 19200, 38400, 57600, 115200, 230400, 921600, 2000000, 2900000, 3000000, 3200000, 3686400, 4000000}

func validRate(r int) bool { return slices.Contains(validIPR, r) }

// regURCFields is the +CEREG/+CGREG/+CREG URC body for setting n: the URC
// has no <n> field, and location fields only from n=2.
func regURCFields(n, stat int) string {
	if n >= 2 && (stat == 1 || stat == 5) {
		return fmt.Sprintf(`%d,"A411","119A808",9`, stat)
	}
	return fmt.Sprint(stat)
}

// regReadFields is the read-command form: <n>,<stat>[,<tac>,<ci>,<AcT>].
func regReadFields(n, stat int) string {
	if n >= 2 && (stat == 1 || stat == 5) {
		return fmt.Sprintf(`%d,%d,"A411","119A808",9`, n, stat)
	}
	return fmt.Sprintf("%d,%d", n, stat)
}
