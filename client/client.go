// Package client is a REST client for drover's Kubernetes-compatible API: it
// reads kubeconfig files, discovers the server's resources, and gets, lists,
// creates, updates, patches, deletes and watches objects as
// unstructured.Unstructured (or as server-rendered metav1.Table). The drover
// CLI uses it, and so do node agents and controllers.
//
//	kc, _ := client.LoadKubeconfig("")
//	rc, ns, _ := kc.RESTConfig("")
//	c, _ := client.New(rc)
//	m, _ := c.Mapper(ctx).ResourceFor("deploy")
//	list, _ := c.Resource(m).Namespace(ns).List(ctx, metav1.ListOptions{})
package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/version"
)

// Content types.
const (
	contentJSON = "application/json"
	// acceptTable asks for a server-rendered Table and accepts plain JSON
	// from a server that cannot render one.
	acceptTable = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
)

// Client talks to one API server. It is safe for concurrent use.
type Client struct {
	cfg  RESTConfig
	base *url.URL
	http *http.Client

	mu     sync.Mutex
	mapper *Mapper // discovery result, cached until ResetMapper
}

// New makes a Client from a RESTConfig.
func New(rc *RESTConfig) (*Client, error) {
	base, err := rc.baseURL()
	if err != nil {
		return nil, err
	}
	tr, err := rc.transport()
	if err != nil {
		return nil, err
	}
	cfg := *rc
	if cfg.UserAgent == "" {
		cfg.UserAgent = "drover"
	}
	// No http.Client timeout: it would cut watches off. Requests get their
	// deadline from cfg.Timeout through the context instead.
	return &Client{cfg: cfg, base: base, http: &http.Client{Transport: tr}}, nil
}

// NewFromKubeconfig loads the kubeconfig files kubectl would (explicit path
// first), picks a context ("" for the current one) and returns a Client and
// the context's namespace ("" if it sets none).
func NewFromKubeconfig(explicitPath, context string) (*Client, string, error) {
	kc, err := LoadKubeconfig(explicitPath)
	if err != nil {
		return nil, "", err
	}
	rc, ns, err := kc.RESTConfig(context)
	if err != nil {
		return nil, "", err
	}
	c, err := New(rc)
	return c, ns, err
}

// Host is the server URL the client talks to.
func (c *Client) Host() string { return c.base.String() }

// request describes one HTTP call against the API.
type request struct {
	method      string
	path        string // absolute API path, e.g. /api/v1/namespaces/x/pods
	query       url.Values
	body        []byte
	contentType string
	accept      string
}

func (c *Client) newHTTPRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	accept := r.accept
	if accept == "" {
		accept = contentJSON
	}
	req.Header.Set("Accept", accept)
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = contentJSON
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	token := c.cfg.BearerToken
	if c.cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(c.cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	switch {
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	case c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	return req, nil
}

// do performs a request and returns the body of a 2xx response; anything
// else becomes a *StatusError.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	req, err := c.newHTTPRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, errorFromResponse(resp.StatusCode, body)
	}
	return body, nil
}

// stream performs a request whose body the caller reads until done (watch).
// Only the caller's context bounds it.
func (c *Client) stream(ctx context.Context, r request) (io.ReadCloser, error) {
	req, err := c.newHTTPRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, errorFromResponse(resp.StatusCode, body)
	}
	return resp.Body, nil
}

// GetRaw GETs any API path (e.g. /healthz) and returns the body.
func (c *Client) GetRaw(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, request{method: http.MethodGet, path: path})
}

// ServerVersion reads /version.
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	var v version.Info
	if err := c.getJSON(ctx, "/version", &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// WithToken is a copy of the client that authenticates with a bearer
// token instead.
func (c *Client) WithToken(token string) (*Client, error) {
	rc := c.cfg
	rc.BearerToken, rc.BearerTokenFile, rc.CertData, rc.KeyData = token, "", nil, nil
	return New(&rc)
}

// Clone is a copy of the client with its own connection pool, for a
// component whose traffic should not queue behind another's.
func (c *Client) Clone() (*Client, error) {
	rc := c.cfg
	return New(&rc)
}
