package codec_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nbiot-uploader/uploader/codec"
)

func ExampleAppendConnect() {
	c := &codec.Connect{
		Version:    codec.V311,
		ClientID:   "site-7",
		CleanStart: true,
		KeepAlive:  60,
	}
	n, err := codec.ConnectSize(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	buf, err := codec.AppendConnect(make([]byte, 0, n), c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes: % x\n", n, buf)
	// Output:
	// 20 bytes: 10 12 00 04 4d 51 54 54 04 02 00 3c 00 06 73 69 74 65 2d 37
}

func ExampleAppendPublish() {
	p := &codec.Publish{Topic: "t/1", Payload: []byte("21.5"), QoS: 1, PacketID: 1}
	// Pack two readings into one chunk: the sizes are known before writing.
	chunk := make([]byte, 0, 64)
	for id := uint16(1); id <= 2; id++ {
		p.PacketID = id
		n, err := codec.PublishSize(codec.V311, p)
		if err != nil || len(chunk)+n > cap(chunk) {
			break
		}
		chunk, _ = codec.AppendPublish(chunk, codec.V311, p)
	}
	fmt.Printf("% x\n", chunk)

	p.Topic = "t/#"
	_, err := codec.AppendPublish(nil, codec.V311, p)
	fmt.Println(errors.Is(err, codec.ErrTopicWildcard))
	// Output:
	// 32 0b 00 03 74 2f 31 00 01 32 31 2e 35 32 0b 00 03 74 2f 31 00 02 32 31 2e 35
	// true
}

func ExampleDecoder_Next() {
	// A broker's reply: CONNACK (MQTT 5, maximum packet size 1024, not
	// authorized), as read from the connection.
	raw := []byte{0x20, 0x08, 0x00, 0x87, 0x05, 0x27, 0x00, 0x00, 0x04, 0x00}
	d := codec.NewDecoder(bytes.NewReader(raw), codec.V5, 4096)
	p, err := d.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Type, p.Connack.MaximumPacketSize)
	err = p.Connack.Err(codec.V5)
	var refused *codec.ConnackError
	if errors.As(err, &refused) {
		fmt.Printf("code 0x%02X: %v\n", refused.Code, err)
	}
	// Output:
	// CONNACK 1024
	// code 0x87: connection refused: not authorized
}

func ExampleAppendAck() {
	buf, _ := codec.AppendAck(nil, codec.V5, codec.TypePuback, 42, 0)
	fmt.Printf("% x\n", buf)
	// Output: 40 02 00 2a
}
