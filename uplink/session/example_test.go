package session_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/nbiot-uploader/uploader/codec"
	"github.com/nbiot-uploader/uploader/uplink/session"
)

// sliceStore is the smallest Store: records in a slice, deleted on Ack.
type sliceStore struct{ recs []session.Record }

func (s *sliceStore) Read(after uint64, maxRecords, maxBytes int) ([]session.Record, error) {
	var out []session.Record
	for _, r := range s.recs {
		if r.Seq > after && len(out) < maxRecords {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *sliceStore) Ack(seqs []uint64) error {
	s.recs = slices.DeleteFunc(s.recs, func(r session.Record) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

// Quarantine drops the record here; a real store keeps it for an operator.
func (s *sliceStore) Quarantine(seq uint64, reason string) error { return s.Ack([]uint64{seq}) }

// Strike is a no-op here; a real store keeps the mark durably.
func (s *sliceStore) Strike(seq uint64) error { return nil }

// Drain three queued readings into an MQTT 5 broker over one connection.
func ExampleRun() {
	// A broker on 127.0.0.1 stands in for the real one.
	broker := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	_ = broker.AddHook(new(auth.AllowHook), nil)
	tcp := listeners.NewTCP(listeners.Config{ID: "example", Address: "127.0.0.1:0"})
	if err := broker.AddListener(tcp); err != nil {
		log.Fatal(err)
	}
	if err := broker.Serve(); err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	store := &sliceStore{recs: []session.Record{
		{Seq: 1, Topic: "site/7/temperature", Payload: []byte("21.5"), QoS: 1},
		{Seq: 2, Topic: "site/7/temperature", Payload: []byte("21.7"), QoS: 1},
		{Seq: 3, Topic: "site/7/battery", Payload: []byte("3.91"), QoS: 0, ExpiresAt: time.Now().Add(time.Hour)},
	}}

	conn, err := net.Dial("tcp", tcp.Address())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := session.Run(ctx, conn, store, session.Config{
		Version:      codec.V5,
		ClientID:     "board-7",
		CleanStart:   true,
		KeepAlive:    60,
		TopicAliases: true,
		SeqProperty:  true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sent %d, acknowledged %d, still queued %d\n", res.Sent, res.Acked, len(store.recs))
	// Output: sent 3, acknowledged 3, still queued 0
}
