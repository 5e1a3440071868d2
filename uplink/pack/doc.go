// Package pack owns the pack format: many queued readings in one MQTT
// payload, deflated when that pays, with an integrity check (FORMAT.md is
// the specification, version 1). It encodes packs on the site (Encoder,
// Fit) and decodes them on the server side (Decode) for `uploader unpack`
// and `uploader bridge`.
//
// It must not depend on the queue, the MQTT codec, the session, the modem
// or any package outside the standard library: a pack is bytes, and Python's
// standard library alone decodes it (README.md shows the decoder).
package pack
