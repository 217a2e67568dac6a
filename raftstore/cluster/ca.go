package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/droverhq/drover/raftstore/pki"
)

// CAExchange settles which certificate authority a cluster's masters share,
// over gossip. Agents share the gossip key too, so the CA (with its private
// key) travels sealed with AES-GCM under a key only masters hold (derived
// from the masters' secret); members without it cannot read it, and what
// they send is ignored. Every master starts with a candidate: the
// CA in its data dir, one given by flags, or a fresh one. A committed CA (one
// a bootstrapped master uses) always wins; between uncommitted candidates the
// lowest fingerprint wins, so all masters converge on one before bootstrap.
type CAExchange struct {
	aead      cipher.AEAD
	mu        sync.Mutex
	ca        *pki.CA
	committed bool
	onChange  func(*pki.CA)
	log       *slog.Logger
}

type caWire struct {
	Committed bool   `json:"committed"`
	Cert      []byte `json:"cert"`
	Key       []byte `json:"key"`
}

// NewCAExchange starts from a candidate CA; sealKey (32 bytes) seals it
// on the wire; onChange is called (without locks held) whenever another
// master's CA is adopted.
func NewCAExchange(ca *pki.CA, committed bool, sealKey []byte, onChange func(*pki.CA), logger *slog.Logger) (*CAExchange, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("CA exchange key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &CAExchange{aead: aead, ca: ca, committed: committed, onChange: onChange, log: logger}, nil
}

// Current returns the CA and whether it is committed.
func (x *CAExchange) Current() (*pki.CA, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ca, x.committed
}

// Commit marks the current CA as the cluster's for good.
func (x *CAExchange) Commit() *pki.CA {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.committed = true
	return x.ca
}

// Local implements SharedState.
func (x *CAExchange) Local() []byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, _ := json.Marshal(caWire{Committed: x.committed, Cert: x.ca.CertPEM, Key: x.ca.KeyPEM})
	nonce := make([]byte, x.aead.NonceSize())
	rand.Read(nonce)
	return x.aead.Seal(nonce, nonce, b, []byte(caWireLabel))
}

// caWireLabel binds sealed CA blobs to their purpose.
const caWireLabel = "drover CA exchange v1"

func (x *CAExchange) open(b []byte) ([]byte, bool) {
	n := x.aead.NonceSize()
	if len(b) < n {
		return nil, false
	}
	out, err := x.aead.Open(nil, b[:n], b[n:], []byte(caWireLabel))
	return out, err == nil
}

// Merge implements SharedState.
func (x *CAExchange) Merge(remote []byte) {
	plain, ok := x.open(remote)
	if !ok {
		return // an agent, or a master of another cluster
	}
	var w caWire
	if err := json.Unmarshal(plain, &w); err != nil || len(w.Cert) == 0 {
		return
	}
	ca, err := pki.ParseCA(w.Cert, w.Key)
	if err != nil {
		x.log.Warn("ignoring unreadable CA from gossip", "err", err)
		return
	}
	x.mu.Lock()
	adopt := false
	switch {
	case x.committed:
		if w.Committed && ca.Fingerprint() != x.ca.Fingerprint() {
			x.log.Error("another master uses a different cluster CA: it belongs to another cluster", "theirs", ca.Fingerprint()[:16], "ours", x.ca.Fingerprint()[:16])
		}
	case w.Committed:
		adopt = ca.Fingerprint() != x.ca.Fingerprint()
		x.committed = true
	case ca.Fingerprint() < x.ca.Fingerprint():
		adopt = true
	}
	if adopt {
		x.ca = ca
	}
	x.mu.Unlock()
	if adopt {
		x.log.Info("adopted the cluster CA from gossip", "fingerprint", ca.Fingerprint()[:16], "committed", w.Committed)
		if x.onChange != nil {
			x.onChange(ca)
		}
	}
}
