package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RESTConfig is everything a Client needs to reach and authenticate to one
// API server. Build it by hand or from a kubeconfig (Kubeconfig.RESTConfig).
type RESTConfig struct {
	// Host is the server URL, e.g. https://127.0.0.1:6443. A bare host:port
	// means https.
	Host string

	// CAData is the PEM bundle the server certificate must chain to; empty
	// means the system roots.
	CAData     []byte
	Insecure   bool   // skip server certificate verification
	ServerName string // overrides the name checked in the server certificate

	// Credentials: a bearer token (BearerTokenFile is re-read on every
	// request, so rotated tokens are picked up), a client certificate, or
	// basic auth.
	BearerToken     string
	BearerTokenFile string
	CertData        []byte
	KeyData         []byte
	Username        string
	Password        string

	// Timeout bounds each request other than watches; zero means none (the
	// caller's context still applies).
	Timeout time.Duration

	// UserAgent defaults to "drover".
	UserAgent string

	// Endpoints, when set, lists host:port addresses of equivalent API
	// servers (e.g. every master, from gossip): connections go to one that
	// answers, moving to another when it fails. Host still names the
	// scheme; server certificates are checked against CAData without a
	// host name.
	Endpoints func() []string
}

func (rc *RESTConfig) baseURL() (*url.URL, error) {
	host := rc.Host
	if host == "" {
		return nil, errors.New("no server address")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", rc.Host, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("server address %q: scheme must be https or http", rc.Host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func (rc *RESTConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: rc.ServerName, InsecureSkipVerify: rc.Insecure} //nolint:gosec // only when the kubeconfig asks for it
	if len(rc.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(rc.CAData) {
			return nil, errors.New("certificate authority: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	if len(rc.CertData) > 0 || len(rc.KeyData) > 0 {
		pair, err := tls.X509KeyPair(rc.CertData, rc.KeyData)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

func (rc *RESTConfig) transport() (*http.Transport, error) {
	tc, err := rc.tlsConfig()
	if err != nil {
		return nil, err
	}
	dial := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	proxy := http.ProxyFromEnvironment
	if rc.Endpoints != nil {
		if err := useFailover(rc, tc); err != nil {
			return nil, err
		}
		dial = (&failoverDialer{endpoints: rc.Endpoints, d: net.Dialer{KeepAlive: 30 * time.Second}}).DialContext
		proxy = nil
	}
	return &http.Transport{
		Proxy:               proxy,
		DialContext:         dial,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	}, nil
}
