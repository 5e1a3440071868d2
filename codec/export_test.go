package codec

// DecoderBufferCap exposes the capacity of the decoder's reusable buffer so
// fuzz tests can check it never exceeds the maximum packet size.
func DecoderBufferCap(d *Decoder) int { return cap(d.buf) }

// DecoderMax exposes the effective maximum packet size.
func DecoderMax(d *Decoder) int { return d.max }
