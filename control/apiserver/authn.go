package apiserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/droverhq/drover/control/jointoken"
	"github.com/droverhq/drover/control/rbac"
	"github.com/droverhq/drover/control/registry"
)

// Tokens are HMACs under the cluster's token key (derived from the cluster
// CA key, which every master holds): any master can check any token
// without a lookup, and nothing secret is stored in the store.
//
//	drover-admin.<mac>              the admin (group system:masters)
//	drover-node.<node>.<mac>        a node agent (system:node:<node>, group system:nodes), see control/jointoken
//	drover-sa.<ns>.<name>.<uid>.<mac>  a service account, valid while it exists with that uid
//
// Rotating the CA rotates every token.
const (
	adminPrefix = "drover-admin."
	nodePrefix  = "drover-node."
	saPrefix    = "drover-sa."
)

func mac(key []byte, msg string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// AdminToken is the cluster admin's bearer token.
func AdminToken(key []byte) string { return adminPrefix + mac(key, "admin") }

// NodeToken is a node agent's bearer token (agents mint it themselves
// from their join token's secret; see control/jointoken).
func NodeToken(key []byte, node string) string {
	return jointoken.NodeToken(jointoken.JoinSecret(key), node)
}

// ServiceAccountToken is a service account's bearer token.
func ServiceAccountToken(key []byte, ns, name, uid string) string {
	body := ns + "." + name + "." + uid
	return saPrefix + body + "." + mac(key, "sa:"+body)
}

// Groups every authenticated user has.
const (
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	groupMasters         = "system:masters"
)

// authenticate finds the user of a request: a verified client certificate
// (CN = user, O = groups, as Kubernetes), or a bearer token. ok is false
// when the request carries no valid credentials.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (rbac.User, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		u := rbac.User{Name: cert.Subject.CommonName, Groups: append([]string(nil), cert.Subject.Organization...)}
		for _, g := range cert.Subject.Organization {
			// drover's own admin and master certificates.
			if g == "drover:admins" || g == "drover:masters" {
				u.Groups = append(u.Groups, groupMasters)
			}
		}
		u.Groups = append(u.Groups, groupAuthenticated)
		return u, true
	}
	auth := r.Header.Get("Authorization")
	tok, found := strings.CutPrefix(auth, "Bearer ")
	if !found || s.cfg.TokenKey == nil {
		return rbac.User{}, false
	}
	key := s.cfg.TokenKey()
	if key == nil {
		return rbac.User{}, false
	}
	tok = strings.TrimSpace(tok)
	switch {
	case strings.HasPrefix(tok, adminPrefix):
		if hmac.Equal([]byte(tok), []byte(AdminToken(key))) {
			return rbac.User{Name: "admin", Groups: []string{groupMasters, groupAuthenticated}}, true
		}
	case strings.HasPrefix(tok, nodePrefix):
		if node, ok := jointoken.CheckNodeToken(jointoken.JoinSecret(key), tok); ok {
			return rbac.User{Name: "system:node:" + node, Groups: []string{"system:nodes", groupAuthenticated}}, true
		}
	case strings.HasPrefix(tok, saPrefix):
		rest := strings.TrimPrefix(tok, saPrefix)
		parts := strings.Split(rest, ".")
		if len(parts) != 4 {
			break
		}
		ns, name, uid := parts[0], parts[1], parts[2]
		if !hmac.Equal([]byte(tok), []byte(ServiceAccountToken(key, ns, name, uid))) {
			break
		}
		sa, err := s.storage.Get(ctx, registry.Lookup("", "v1", "serviceaccounts"), ns, name, true)
		if err != nil {
			break
		}
		if m, ok := metaOf(sa); !ok || string(m.GetUID()) != uid {
			break
		}
		return rbac.User{Name: "system:serviceaccount:" + ns + ":" + name, UID: uid,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, groupAuthenticated}}, true
	}
	return rbac.User{}, false
}
