package queue_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/nbiot-uploader/uploader/queue"
)

// A sensor script stores readings; the uplink window reads them in bounded batches and acks
// what the broker acknowledged.
func Example() {
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	q, err := queue.Open(filepath.Join(dir, "queue.db"), &queue.Options{MaxRecords: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	seqs, err := q.Enqueue(
		queue.Record{Topic: "site/7/temp", Payload: []byte("21.5"), QoS: 1},
		queue.Record{Topic: "site/7/hum", Payload: []byte("48"), QoS: 1},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued", seqs)

	batch, err := q.Read(0, 10, 64*1024)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range batch {
		fmt.Printf("send seq %d %s %s\n", r.Seq, r.Topic, r.Payload)
	}
	if err := q.Ack([]uint64{batch[0].Seq}); err != nil { // the broker acked only the first
		log.Fatal(err)
	}
	st, err := q.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("left", st.Depth, "last seq", st.LastSeq)
	// Output:
	// enqueued [1 2]
	// send seq 1 site/7/temp 21.5
	// send seq 2 site/7/hum 48
	// left 1 last seq 2
}

// A window drains the queue batch by batch, continuing after the last record it got.
func ExampleQueue_Read() {
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	for i := range 5 {
		if _, err := q.Enqueue(queue.Record{Topic: "t", Payload: fmt.Appendf(nil, "%d", i)}); err != nil {
			log.Fatal(err)
		}
	}
	var after uint64
	for {
		batch, err := q.Read(after, 2, 0)
		if err != nil {
			log.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		var acked []uint64
		for _, r := range batch {
			acked = append(acked, r.Seq)
		}
		if err := q.Ack(acked); err != nil {
			log.Fatal(err)
		}
		fmt.Println("acked", acked)
		after = batch[len(batch)-1].Seq
	}
	// Output:
	// acked [1 2]
	// acked [3 4]
	// acked [5]
}

// The uplink stores a summary of each window; `status` shows it.
func ExampleQueue_PutWindowSummary() {
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := queue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	if err := q.PutWindowSummary([]byte(`{"sent":60,"acked":60}`)); err != nil {
		log.Fatal(err)
	}
	summary, err := q.WindowSummary()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(summary))
	// Output: {"sent":60,"acked":60}
}
