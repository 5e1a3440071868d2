package session

// aliasTable assigns MQTT 5 topic aliases 1..max to topics in order of first
// use and never reassigns one: the set of sensor topics in a queue is small and
// stable, and a fixed mapping cannot thrash the way least-recently-used
// replacement does when the topics outnumber the aliases. Topics beyond max
// are sent by name.
type aliasTable struct {
	max uint16
	ids map[string]uint16
}

func newAliasTable(max uint16) *aliasTable {
	return &aliasTable{max: max, ids: make(map[string]uint16)}
}

// lookup returns the topic's alias and true when the broker already knows
// it, or the alias to establish with the next PUBLISH (0 if none is left).
func (t *aliasTable) lookup(topic string) (alias uint16, known bool) {
	if a, ok := t.ids[topic]; ok {
		return a, true
	}
	if len(t.ids) < int(t.max) {
		return uint16(len(t.ids) + 1), false
	}
	return 0, false
}

// assign records that a PUBLISH carrying both topic and alias was written.
func (t *aliasTable) assign(topic string, alias uint16) { t.ids[topic] = alias }
