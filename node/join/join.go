// Package join connects a node agent to its cluster: it joins the masters'
// gossip as a non-voting member (role "agent") with the key from the join
// token, learns every master's Kubernetes API address from their gossip
// metadata (and keeps learning as masters come and go), fetches the cluster
// CA and checks it against the hash pinned in the token, and builds an API
// client that fails over between masters.
package join

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/jointoken"
	"github.com/droverhq/drover/raftstore/cluster"
)

// Config says how to join.
type Config struct {
	Node      string           // this node's name (also its gossip name)
	Token     *jointoken.Token // from drover token join
	Bind      string           // gossip address, host:port
	Advertise string           // gossip address others should use, if not Bind
	Join      []string         // gossip addresses of masters (any one suffices)
	Version   string
	Local     bool // gossip timings for one machine (labs, tests)
	Logger    *slog.Logger
}

// Cluster is a joined cluster.
type Cluster struct {
	g      *cluster.Gossip
	cfg    Config
	CACert []byte // the cluster CA certificate (PEM), checked against the token
}

// Join joins gossip and waits (until ctx ends) for a master's API address
// and the CA.
func Join(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Token == nil || cfg.Node == "" || len(cfg.Join) == 0 {
		return nil, errors.New("join: a node name, a join token and at least one master address are required")
	}
	g, err := cluster.Start(cluster.Config{Name: cfg.Node, Bind: cfg.Bind, Advertise: cfg.Advertise, SecretKey: cfg.Token.GossipKey,
		Meta: cluster.Meta{ID: cfg.Node, Role: cluster.RoleAgent, Version: cfg.Version}, Local: cfg.Local, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("join gossip: %w", err)
	}
	c := &Cluster{g: g, cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			g.Shutdown()
		}
	}()
	for {
		if _, err := g.Join(cfg.Join); err != nil {
			cfg.Logger.Warn("no master answered on gossip yet; retrying", "join", cfg.Join, "err", err)
		} else if addrs := c.APIAddrs(); len(addrs) > 0 {
			ca, err := fetchCA(ctx, addrs, cfg.Token.CAHash)
			if err == nil {
				c.CACert = ca
				ok = true
				return c, nil
			}
			cfg.Logger.Warn("fetching the cluster CA failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join: %w (is the join token from this cluster, and do masters listen on %v?)", ctx.Err(), cfg.Join)
		case <-time.After(time.Second):
		}
	}
}

// APIAddrs lists the Kubernetes API addresses of the live masters.
func (c *Cluster) APIAddrs() []string {
	var out []string
	for _, m := range c.g.Members() {
		if m.Meta.Role == cluster.RoleMaster && m.State == cluster.StateAlive && m.Meta.KubeAPI != "" {
			out = append(out, m.Meta.KubeAPI)
		}
	}
	sort.Strings(out)
	return out
}

// Client is an API client authenticated as this node, failing over
// between the masters gossip knows.
func (c *Cluster) Client() (*client.Client, error) {
	return client.New(&client.RESTConfig{Host: "https://masters", CAData: c.CACert,
		BearerToken: jointoken.NodeToken(c.cfg.Token.JoinSecret, c.cfg.Node), Endpoints: c.APIAddrs,
		UserAgent: "drover-agent/" + c.cfg.Node})
}

// Leave leaves gossip (on shutdown).
func (c *Cluster) Leave() {
	c.g.Leave(2 * time.Second)
	c.g.Shutdown()
}

// fetchCA reads /cacerts from a master and checks it against the hash the
// join token pins: until then nothing from the master is trusted.
func fetchCA(ctx context.Context, addrs []string, hash string) ([]byte, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // checked against the pinned hash below
	var errs []error
	for _, a := range addrs {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+a+"/cacerts", nil)
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: status %d %v", a, resp.StatusCode, err))
			continue
		}
		if jointoken.CAHashOf(b) != hash {
			errs = append(errs, fmt.Errorf("%s serves a CA that does not match the join token", a))
			continue
		}
		return b, nil
	}
	return nil, errors.Join(errs...)
}
