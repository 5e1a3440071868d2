package uplink

import "testing"

// The teardown is one plan decided once from how the hold ended.
func TestPlanTeardown(t *testing.T) {
	tests := []struct {
		name  string
		state holdState
		want  TeardownPlan
	}{
		{"window", holdState{opened: true, connOpen: true}, TeardownPlan{CloseConn: true, RadioOff: true}},
		{"clean window", holdState{opened: true, connOpen: true, cleanEnd: true}, TeardownPlan{CloseConn: true, RadioOff: true}},
		{"clean window with a will", holdState{opened: true, connOpen: true, cleanEnd: true, will: true}, TeardownPlan{DrainConn: true, CloseConn: true, RadioOff: true}},
		{"window with a will, no DISCONNECT", holdState{opened: true, connOpen: true, will: true}, TeardownPlan{CloseConn: true, RadioOff: true}},
		{"clean window, split cut", holdState{opened: true, connOpen: true, cleanEnd: true, will: true, splitCut: true}, TeardownPlan{AwaitBroker: true, RadioOff: true}},
		{"window that never dialled", holdState{opened: true}, TeardownPlan{RadioOff: true}},
		{"window with a power switch", holdState{opened: true, connOpen: true, powerSwitch: true}, TeardownPlan{CloseConn: true, PowerDown: true, CutPower: true}},
		{"module that never answered, power switch", holdState{powerSwitch: true}, TeardownPlan{CutPower: true}},
		{"module that never answered", holdState{}, TeardownPlan{}},
		{"split write cut, no switch", holdState{opened: true, connOpen: true, splitCut: true}, TeardownPlan{AwaitBroker: true, RadioOff: true}},
		{"split write cut, power switch", holdState{opened: true, connOpen: true, splitCut: true, powerSwitch: true}, TeardownPlan{CutPower: true}},
		{"modem check --keep-radio-on", holdState{opened: true, keepRadio: true}, TeardownPlan{}},
		{"keep radio, power switch", holdState{opened: true, keepRadio: true, powerSwitch: true}, TeardownPlan{}},
		{"keep radio cannot override a cut split write", holdState{opened: true, connOpen: true, splitCut: true, keepRadio: true}, TeardownPlan{AwaitBroker: true, RadioOff: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planTeardown(tt.state)
			if got != tt.want {
				t.Errorf("plan = %q, want %q", got, tt.want)
			}
			if got.CloseConn && (got.AwaitBroker || tt.state.splitCut) {
				t.Error("the plan sends AT+CIPCLOSE to a module that may be waiting for the rest of a PUBLISH")
			}
		})
	}
	if s := (TeardownPlan{CloseConn: true, RadioOff: true}).String(); s != "close connection, AT+CFUN=0" {
		t.Errorf("String() = %q", s)
	}
	if s := (TeardownPlan{}).String(); s != "leave as is" {
		t.Errorf("String() = %q", s)
	}
}
