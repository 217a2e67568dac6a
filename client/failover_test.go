package client_test

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

// With several endpoints, the client skips one that does not answer and
// checks the server's certificate against the CA, whatever host it dialled.
func TestEndpointFailover(t *testing.T) {
	srv := apiservertest.Start(t)
	u, _ := url.Parse(srv.URL)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens here now
	var asked atomic.Int32
	c, err := client.New(&client.RESTConfig{Host: "https://masters.invalid", CAData: srv.CA.CertPEM, BearerToken: srv.Token,
		Endpoints: func() []string { asked.Add(1); return []string{deadAddr, "localhost:" + u.Port()} }})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := client.GetTyped[corev1.Namespace](context.Background(), c.Resource(client.Mapping{Version: "v1", Resource: "namespaces", Kind: "Namespace"}), "default")
	if err != nil || ns.Name != "default" || asked.Load() == 0 {
		t.Fatalf("through failover: %v %v", ns, err)
	}
	// A server whose certificate is not from the CA is refused.
	other := apiservertest.Start(t)
	ou, _ := url.Parse(other.URL)
	c2, _ := client.New(&client.RESTConfig{Host: "https://masters.invalid", CAData: srv.CA.CertPEM, BearerToken: srv.Token,
		Endpoints: func() []string { return []string{"127.0.0.1:" + ou.Port()} }})
	if _, err := c2.Resource(client.Pods).Namespace("default").List(context.Background(), metav1.ListOptions{}); err == nil {
		t.Fatal("a server outside the CA was trusted")
	}
}
