package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// failoverDialer dials the first endpoint that answers, starting with the
// one that worked last, so a client of several masters moves to another
// when its master dies. Endpoints are asked for on every dial: a gossip
// view may change.
type failoverDialer struct {
	endpoints func() []string
	d         net.Dialer
	mu        sync.Mutex
	last      string
}

func (f *failoverDialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	eps := f.endpoints()
	if len(eps) == 0 {
		return nil, errors.New("no API server endpoint known")
	}
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	ordered := make([]string, 0, len(eps))
	for _, e := range eps {
		if e == last {
			ordered = append([]string{e}, ordered...)
		} else {
			ordered = append(ordered, e)
		}
	}
	var errs []error
	for _, ep := range ordered {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := f.d.DialContext(dctx, network, ep)
		cancel()
		if err == nil {
			f.mu.Lock()
			f.last = ep
			f.mu.Unlock()
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no API server endpoint answered: %w", errors.Join(errs...))
}

// verifyChainOnly checks the server's certificate against the CA without
// a host name: with failover, the host dialled is not the one in the URL.
func verifyChainOnly(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
}

func useFailover(rc *RESTConfig, tc *tls.Config) error {
	if rc.Endpoints == nil {
		return nil
	}
	if tc.RootCAs == nil {
		return errors.New("failover between endpoints needs the CA (CAData)")
	}
	tc.InsecureSkipVerify = true //nolint:gosec // the chain is verified by VerifyPeerCertificate
	tc.VerifyPeerCertificate = verifyChainOnly(tc.RootCAs)
	return nil
}
