// Package apiservertest runs a real drover API server for tests of its
// clients (the CLI, the REST client, agents, controllers): a real store
// member and the real API server behind HTTPS with a test CA, plus a
// kubeconfig file for it with the admin token.
package apiservertest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/droverhq/drover/control/apiserver"
	"github.com/droverhq/drover/raftstore/pki"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

// Server is a running API server.
type Server struct {
	URL        string // https://127.0.0.1:port
	Kubeconfig string // path of a kubeconfig for the admin
	Token      string // the admin bearer token
	CA         *pki.CA
	TokenKey   []byte
	API        *apiserver.Server
	Store      *raftstoretest.Cluster
}

// Start starts a one-member store and an API server on it, and stops both
// when the test ends. It returns once the defaults (namespaces, roles) are
// written.
func Start(t testing.TB) *Server {
	t.Helper()
	c := raftstoretest.New(t, 1, raftstoretest.Options{})
	s := &Server{Store: c, TokenKey: []byte("apiservertest token key")}
	s.Token = apiserver.AdminToken(s.TokenKey)
	var err error
	if s.CA, err = pki.NewCA("apiservertest CA"); err != nil {
		t.Fatal(err)
	}
	// The certificate this API server shows node agents (pods/log, exec).
	nodeCert, _, _, err := s.CA.Issue("apiservertest", nil, "drover:masters")
	if err != nil {
		t.Fatal(err)
	}
	api, err := apiserver.New(apiserver.Config{Store: c.Store(0), TokenKey: func() []byte { return s.TokenKey }, Version: "test",
		NodeClientTLS: func() *tls.Config {
			return &tls.Config{Certificates: []tls.Certificate{nodeCert}, InsecureSkipVerify: true}
		}})
	if err != nil {
		t.Fatal(err)
	}
	s.API = api
	cert, _, _, err := s.CA.Issue("apiserver", []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(api)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake noise from tests of bad certificates
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: s.CA.Pool()}
	hs.StartTLS()
	s.URL = hs.URL
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); api.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		hs.CloseClientConnections()
		hs.Close()
		wg.Wait()
	})
	s.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: default
current-context: test
`, s.URL, base64.StdEncoding.EncodeToString(s.CA.CertPEM), s.Token)
	if err := os.WriteFile(s.Kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	client := s.Client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/namespaces/default/serviceaccounts/default", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("apiservertest: the API server did not write its defaults in time (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client is an HTTP client trusting the test CA (no credentials).
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA.Pool()}}}
}
