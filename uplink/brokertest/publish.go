package brokertest

import "fmt"

// Publish routes a message as another client would (mochi's inline
// client): subscribers with a persistent session that are offline get it
// when they come back (QoS 1 and 2).
func (b *Broker) Publish(topic string, payload []byte, qos byte, retain bool) error {
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publish on %q: %w", topic, err)
	}
	return nil
}
