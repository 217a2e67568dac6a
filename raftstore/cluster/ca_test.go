package cluster

import (
	"bytes"
	"testing"

	"github.com/droverhq/drover/raftstore/pki"
)

// The CA travels sealed: masters with the key settle on one CA; a member
// with only the gossip key (an agent) learns nothing, and cannot push one.
func TestCAExchangeIsSealed(t *testing.T) {
	keyA := bytes.Repeat([]byte{1}, 32)
	keyB := bytes.Repeat([]byte{2}, 32)
	ca1, _ := pki.NewCA("one")
	ca2, _ := pki.NewCA("two")
	low, high := ca1, ca2
	if ca2.Fingerprint() < ca1.Fingerprint() {
		low, high = ca2, ca1
	}
	a, err := NewCAExchange(low, false, keyA, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCAExchange(high, false, keyA, nil, nil)
	outsider, _ := NewCAExchange(high, true, keyB, nil, nil)
	wire := a.Local()
	if bytes.Contains(wire, []byte("PRIVATE KEY")) || bytes.Contains(wire, low.KeyPEM[30:60]) {
		t.Fatal("the CA key is readable on the wire")
	}
	b.Merge(wire)
	if got, _ := b.Current(); got.Fingerprint() != low.Fingerprint() {
		t.Fatal("a master with the key did not adopt the lower CA")
	}
	outsider.Merge(wire)
	if got, _ := outsider.Current(); got.Fingerprint() != high.Fingerprint() {
		t.Fatal("a member without the key read the CA")
	}
	// A committed CA pushed by an outsider is ignored.
	a.Merge(outsider.Local())
	if got, committed := a.Current(); got.Fingerprint() != low.Fingerprint() || committed {
		t.Fatal("a master took a CA sealed with another key")
	}
	a.Merge([]byte("garbage"))
	if _, err := NewCAExchange(low, false, []byte("short"), nil, nil); err == nil {
		t.Fatal("a short seal key was accepted")
	}
}
