package master

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver"
	"github.com/droverhq/drover/control/jointoken"
	"github.com/droverhq/drover/raftstore/pki"
)

// DefaultKubeAPIPort is the Kubernetes-compatible API's port.
const DefaultKubeAPIPort = 6443

// KubeconfigName is the admin kubeconfig written into the data dir.
const KubeconfigName = "admin.kubeconfig"

// startKubeAPI starts the Kubernetes-compatible API server on
// cfg.KubeAPI: HTTPS with this master's certificate from the cluster CA
// (plaintext in dev mode), client certificates verified against the CA.
func (m *Master) startKubeAPI(ctx context.Context) error {
	if m.cfg.KubeAPI == "" {
		return nil
	}
	key, err := m.tokenKey()
	if err != nil {
		return err
	}
	srv, err := apiserver.New(apiserver.Config{
		Store: m.Store, TokenKey: key, NodeClientTLS: m.nodeClientTLS, CACert: m.caCertPEM,
		ServiceCIDR: m.cfg.ServiceCIDR, NodePortRange: m.cfg.NodePortRange, MaxBodyBytes: m.cfg.MaxRequestBytes,
		ClusterCIDR: m.cfg.ClusterCIDR, NodeCIDRMaskSize: m.cfg.NodeCIDRMaskSize,
		Version: m.cfg.Version, Logger: m.log.With("component", "apiserver"),
	})
	if err != nil {
		return err
	}
	m.API = srv
	ln, err := net.Listen("tcp", m.cfg.KubeAPI)
	if err != nil {
		return fmt.Errorf("listen for the Kubernetes API on %s: %w", m.cfg.KubeAPI, err)
	}
	m.kubeAddr = firstNonEmpty(m.cfg.AdvertiseKubeAPI, ln.Addr().String())
	var tlsConf *tls.Config
	if m.cfg.Insecure {
		// Dev mode still serves HTTPS: kubectl sends bearer tokens only
		// over TLS. A local CA in the data dir signs a loopback certificate.
		ca, err := m.devCA()
		if err != nil {
			return err
		}
		cert, _, _, err := ca.Issue(m.cfg.ID, []string{"localhost", "127.0.0.1", "::1", hostPart(m.kubeAddr)}, "drover:masters")
		if err != nil {
			return err
		}
		m.devKubeCA = ca
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	} else {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			ca, cert := m.tls.Current()
			if ca == nil || cert == nil {
				return nil, errors.New("no TLS identity yet")
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert},
				ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}, nil
		}}
	}
	m.wg.Add(2)
	go func() { defer m.wg.Done(); srv.Run(ctx) }()
	go func() {
		defer m.wg.Done()
		if err := srv.Serve(ctx, ln, tlsConf); err != nil {
			m.log.Error("Kubernetes API server stopped", "err", err)
		}
	}()
	if m.cfg.Insecure {
		return m.writeKubeconfig(m.devKubeCA)
	}
	return nil
}

// devCA loads or creates the dev-mode CA that only the Kubernetes API uses.
func (m *Master) devCA() (*pki.CA, error) {
	ca, err := pki.LoadCA(m.PKIDir)
	if err == nil {
		return ca, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load the dev CA from %s: %w", m.PKIDir, err)
	}
	if ca, err = pki.NewCA("drover dev CA"); err != nil {
		return nil, err
	}
	if err := ca.Save(m.PKIDir); err != nil {
		return nil, fmt.Errorf("save the dev CA: %w", err)
	}
	return ca, nil
}

func hostPart(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// tokenKey is the HMAC key bearer tokens are checked with, derived from
// the cluster CA key (in dev mode, the local dev CA's): every master has the
// same one, and it changes only with the CA.
func (m *Master) tokenKey() (func() []byte, error) {
	if m.cfg.Insecure {
		ca, err := m.devCA()
		if err != nil {
			return nil, err
		}
		key := caTokenKey(ca)
		return func() []byte { return key }, nil
	}
	return func() []byte {
		ca, _ := m.tls.Current()
		if ca == nil {
			return nil
		}
		return caTokenKey(ca)
	}, nil
}

func caTokenKey(ca *pki.CA) []byte {
	h := hmac.New(sha256.New, ca.KeyPEM)
	h.Write([]byte("drover bearer token key v1"))
	return h.Sum(nil)
}

// KubeAPIAddr is the Kubernetes API address clients use.
func (m *Master) KubeAPIAddr() string { return m.kubeAddr }

// KubeconfigPath is where the admin kubeconfig is written.
func (m *Master) KubeconfigPath() string { return filepath.Join(m.cfg.DataDir, KubeconfigName) }

// writeKubeconfig writes the admin kubeconfig (server, CA, admin token)
// into the data dir.
func (m *Master) writeKubeconfig(ca *pki.CA) error {
	if m.cfg.KubeAPI == "" || m.kubeAddr == "" {
		return nil
	}
	if ca == nil {
		return nil
	}
	server, token := "https://"+m.kubeAddr, apiserver.AdminToken(caTokenKey(ca))
	caLine := "\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(ca.CertPEM)
	if m.secret != nil {
		tok := jointoken.New(GossipKey(m.secret), jointoken.JoinSecret(caTokenKey(ca)), ca.CertPEM)
		if err := pki.WriteFile(m.cfg.DataDir, JoinTokenName, []byte(tok+"\n"), 0o600); err != nil {
			return fmt.Errorf("write the join token: %w", err)
		}
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: drover
  cluster:
    server: %s%s
users:
- name: admin
  user:
    token: %s
contexts:
- name: drover
  context:
    cluster: drover
    user: admin
    namespace: default
current-context: drover
`, server, caLine, token)
	return pki.WriteFile(m.cfg.DataDir, KubeconfigName, []byte(kc), 0o600)
}

// LocalClient is a client of this master's own Kubernetes API with the
// admin token; the cluster CA must be settled (true once bootstrapped).
func (m *Master) LocalClient() (*client.Client, error) {
	if m.kubeAddr == "" {
		return nil, errors.New("this master serves no Kubernetes API")
	}
	ca := m.devKubeCA
	if ca == nil {
		ca, _ = m.tls.Current()
	}
	if ca == nil {
		return nil, errors.New("no cluster CA yet")
	}
	host, port, err := net.SplitHostPort(m.kubeAddr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return client.New(&client.RESTConfig{Host: "https://" + net.JoinHostPort(host, port), CAData: ca.CertPEM,
		BearerToken: apiserver.AdminToken(caTokenKey(ca)), UserAgent: "drover-control-plane"})
}

// runLeaderWork runs the configured leader-only components for one term.
func (m *Master) runLeaderWork(ctx context.Context) {
	c, err := m.LocalClient()
	if err != nil {
		m.log.Error("leader-only work cannot reach the local API", "err", err)
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	for _, w := range m.cfg.LeaderWork(c) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.log.Info("starting leader-only component", "name", w.Name)
			w.Run(ctx)
		}()
	}
	wg.Wait()
}

// nodeClientTLS is how this master calls node agents: with its own
// certificate (group drover:masters), which agents check against the
// cluster CA. Agents serve self-signed certificates, trusted by the node's
// registered address as kube-apiserver trusts kubelets without a kubelet CA.
func (m *Master) nodeClientTLS() *tls.Config {
	var cert *tls.Certificate
	if m.devKubeCA != nil {
		m.caMu.Lock()
		if m.devNodeCert == nil {
			if c, _, _, err := m.devKubeCA.Issue(m.cfg.ID, nil, "drover:masters"); err == nil {
				m.devNodeCert = &c
			}
		}
		cert = m.devNodeCert
		m.caMu.Unlock()
	} else {
		_, cert = m.tls.Current()
	}
	if cert == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, InsecureSkipVerify: true}
}

// JoinTokenName is the file in the data dir holding the agents' join token.
const JoinTokenName = "join-token"

// JoinTokenPath is where the agents' join token is written once the
// cluster has formed.
func (m *Master) JoinTokenPath() string { return filepath.Join(m.cfg.DataDir, JoinTokenName) }

// caCertPEM is the CA certificate clients of the Kubernetes API trust.
func (m *Master) caCertPEM() []byte {
	if m.devKubeCA != nil {
		return m.devKubeCA.CertPEM
	}
	if ca, _ := m.tls.Current(); ca != nil {
		return ca.CertPEM
	}
	return nil
}

// NodeClient is a client of this master's Kubernetes API authenticated as
// node (an in-process agent, e.g. the one `drover server --dev` runs).
func (m *Master) NodeClient(node string) (*client.Client, error) {
	c, err := m.LocalClient()
	if err != nil {
		return nil, err
	}
	ca := m.devKubeCA
	if ca == nil {
		ca, _ = m.tls.Current()
	}
	return c.WithToken(apiserver.NodeToken(caTokenKey(ca), node))
}

// CACertPEM is the CA certificate (PEM) the Kubernetes API's clients and
// node agents trust.
func (m *Master) CACertPEM() []byte { return m.caCertPEM() }
