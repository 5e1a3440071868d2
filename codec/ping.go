package codec

// AppendPingreq appends the two-byte PINGREQ C0 00.
func AppendPingreq(dst []byte) []byte { return append(dst, byte(TypePingreq)<<4, 0) }

// AppendPingresp appends the two-byte PINGRESP D0 00, for simulated brokers.
func AppendPingresp(dst []byte) []byte { return append(dst, byte(TypePingresp)<<4, 0) }
