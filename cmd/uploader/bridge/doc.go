// Package bridge owns `uploader bridge`: it subscribes to the packs sites
// publish (package uplink/pack), republishes every reading on its original
// topic, de-duplicates on client id + seq with a bounded state persisted in
// a small bbolt file, and acknowledges a pack only once every reading in it
// is acknowledged by the broker.
//
// It runs on a server, never on a board: it speaks MQTT 5 through
// github.com/eclipse/paho.golang and must not depend on the queue, package
// uplink, the session, the modem or the MQTT codec; cmd/uploader wires it
// up in its workstation build only.
package bridge
