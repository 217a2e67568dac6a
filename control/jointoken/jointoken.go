// Package jointoken is how node agents join a cluster. A join token
//
//	drover-join.<gossip key>.<join secret>.<CA hash>
//
// carries what an agent needs and nothing more: the gossip key (to find
// the masters), the join secret (to mint its own node token), and the
// SHA-256 of the cluster CA certificate (to trust the masters' API before it
// has the CA). The join secret is derived from the masters' token key, so
// the API server checks node tokens without storing anything; the masters'
// secret and the CA key never leave the masters. Whoever holds a join token
// can act as any node, as with k3s's agent token: keep it like a password.
package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	joinPrefix = "drover-join."
	nodePrefix = "drover-node."
)

// Token is a parsed join token.
type Token struct {
	GossipKey  []byte
	JoinSecret []byte
	CAHash     string // hex SHA-256 of the CA certificate's DER or PEM bytes (as CAHashOf computes)
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// JoinSecret derives the join secret from the API servers' token key.
func JoinSecret(tokenKey []byte) []byte { return mac(tokenKey, "drover join secret v1") }

// CAHashOf is the hash a join token pins the CA certificate (PEM) with.
func CAHashOf(caCertPEM []byte) string {
	sum := sha256.Sum256(caCertPEM)
	return hex.EncodeToString(sum[:])
}

// New builds a join token.
func New(gossipKey, joinSecret, caCertPEM []byte) string {
	return joinPrefix + base64.RawURLEncoding.EncodeToString(gossipKey) + "." +
		base64.RawURLEncoding.EncodeToString(joinSecret) + "." + CAHashOf(caCertPEM)
}

// Parse reads a join token, naming what is wrong with a bad one.
func Parse(s string) (*Token, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), joinPrefix)
	if !ok {
		return nil, errors.New("not a drover join token (it starts with drover-join.; a master writes it to <data-dir>/join-token)")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed join token: want 4 dot-separated parts, got %d", len(parts)+1)
	}
	gk, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	js, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err := errors.Join(err1, err2); err != nil || (len(gk) != 16 && len(gk) != 24 && len(gk) != 32) || len(js) != 32 || len(parts[2]) != 64 {
		return nil, errors.New("malformed join token: a part has the wrong encoding or length")
	}
	return &Token{GossipKey: gk, JoinSecret: js, CAHash: parts[2]}, nil
}

// NodeToken is node's bearer token, minted from the join secret.
func NodeToken(joinSecret []byte, node string) string {
	return nodePrefix + node + "." + base64.RawURLEncoding.EncodeToString(mac(joinSecret, "node:"+node))
}

// CheckNodeToken returns the node a token belongs to, if it is valid.
func CheckNodeToken(joinSecret []byte, tok string) (string, bool) {
	rest, ok := strings.CutPrefix(tok, nodePrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", false
	}
	node := rest[:i]
	return node, hmac.Equal([]byte(tok), []byte(NodeToken(joinSecret, node)))
}
