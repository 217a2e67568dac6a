package cluster

import (
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/droverhq/drover/raftstore/pki"
)

// CAExchange settles which certificate authority a cluster's masters share,
// over encrypted gossip (the gossip key is the cluster's root secret, so
// never run it without encryption). Every master starts with a candidate: the
// CA in its data dir, one given by flags, or a fresh one. A committed CA (one
// a bootstrapped master uses) always wins; between uncommitted candidates the
// lowest fingerprint wins, so all masters converge on one before bootstrap.
type CAExchange struct {
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

// NewCAExchange starts from a candidate CA; onChange is called (without
// locks held) whenever another master's CA is adopted.
func NewCAExchange(ca *pki.CA, committed bool, onChange func(*pki.CA), logger *slog.Logger) *CAExchange {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &CAExchange{ca: ca, committed: committed, onChange: onChange, log: logger}
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
	return b
}

// Merge implements SharedState.
func (x *CAExchange) Merge(remote []byte) {
	var w caWire
	if err := json.Unmarshal(remote, &w); err != nil || len(w.Cert) == 0 {
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
