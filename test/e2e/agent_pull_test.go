package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/node/image/imagetest"
)

// authProxy serves a Basic-auth-checking reverse proxy in front of
// registry on loopback until the test ends: Debian's docker-registry
// needs an htpasswd file (apache2-utils) for auth of its own. It counts
// the requests it let through.
func authProxy(t *testing.T, registry, user, password string) (host string, passed *atomic.Int64) {
	t.Helper()
	target, _ := url.Parse("http://" + registry)
	// The proxy keeps the client's Host header, so the registry's upload
	// Locations point back at the proxy.
	rp := httputil.NewSingleHostReverseProxy(target)
	passed = &atomic.Int64{}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passed.Add(1)
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: imagetest.BasicAuth(user, password)(counted)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), passed
}

const pullPods = `apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s/e2e/busybox:v1
    command: ["sh", "-c", "echo pulled-and-running; trap 'exit 0' TERM; sleep 3600 & wait"]
---
apiVersion: v1
kind: Pod
metadata: {name: private-nocreds}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[2]s/private/busybox:v1
    # Always: the "private" pod may already have pulled this image, and
    # IfNotPresent would (rightly) run it without asking the registry.
    imagePullPolicy: Always
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: %[3]s
---
apiVersion: v1
kind: Pod
metadata: {name: private}
spec:
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: regcred}]
  containers:
  - name: app
    image: %[2]s/private/busybox:v1
    command: ["sh", "-c", "echo private-and-running; trap 'exit 0' TERM; sleep 3600 & wait"]
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s/e2e/missing:v1
`

// Pulls through the agent from Debian's docker-registry on loopback
// (listed with --insecure-registry): an image only in the registry runs
// (Pulling/Pulled events); a registry behind basic auth refuses a pod
// without credentials (ErrImagePull/ImagePullBackOff) and serves one with
// an imagePullSecret of type kubernetes.io/dockerconfigjson; a missing
// image gives ErrImagePull, then ImagePullBackOff while backing off, with
// Failed events.
func TestAgentPullsFromRegistry(t *testing.T) {
	requireAgentHost(t)
	reg := imagetest.DockerRegistry(t)
	const user, password = "drover", "pull-s3cret"
	private, passed := authProxy(t, reg.Host, user, password)
	img := imagetest.Busybox(t)
	reg.Push(t, "e2e/busybox:v1", img)
	(&imagetest.Registry{Host: private, Auth: &authn.Basic{Username: user, Password: password}}).Push(t, "private/busybox:v1", img)

	c := lifecycleCluster(t, slotRegistry, "--insecure-registry", reg.Host, "--insecure-registry", private)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{private: map[string]string{
		"username": user, "password": password, "auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	start := time.Now()
	beforePull := passed.Load()
	c.apply(fmt.Sprintf(pullPods, reg.Host, private, base64.StdEncoding.EncodeToString(cfg)))

	// From the open registry.
	c.waitPod("pulled", 60*time.Second, "running", running)
	t.Logf("pulled: running %s after apply", time.Since(start).Round(time.Millisecond))
	c.waitEvent("pulled", "Pulling", reg.Host+"/e2e/busybox:v1", 10*time.Second)
	c.waitEvent("pulled", "Pulled", reg.Host+"/e2e/busybox:v1", 10*time.Second)
	c.waitOutput("pulled-and-running", 10*time.Second, "logs", "pulled")

	// Behind auth, with the secret.
	c.waitPod("private", 60*time.Second, "running", running)
	c.waitOutput("private-and-running", 10*time.Second, "logs", "private")
	if passed.Load() == beforePull {
		t.Fatal("no authenticated request reached the registry behind the proxy")
	}

	// Behind auth, without credentials.
	p := c.waitPod("private-nocreds", 30*time.Second, "ImagePullBackOff", func(p *corev1.Pod) bool {
		cs := ctr(p)
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Fatalf("private-nocreds is %s, want Pending", p.Status.Phase)
	}
	ev := c.waitEvent("private-nocreds", "Failed", "Failed to pull image", 10*time.Second)
	if msg := strings.ToLower(ev.Message); !strings.Contains(msg, "unauthorized") && !strings.Contains(msg, "401") {
		t.Fatalf("the pull failure does not say it was refused: %s", ev.Message)
	}

	// A missing image: ErrImagePull, then ImagePullBackOff.
	seen := map[string]bool{}
	c.waitPod("missing", 30*time.Second, "ErrImagePull and ImagePullBackOff", func(p *corev1.Pod) bool {
		if cs := ctr(p); cs != nil && cs.State.Waiting != nil {
			seen[cs.State.Waiting.Reason] = true
			if cs.State.Waiting.Reason == "ImagePullBackOff" && !strings.Contains(cs.State.Waiting.Message, reg.Host+"/e2e/missing:v1") {
				t.Fatalf("ImagePullBackOff message: %q", cs.State.Waiting.Message)
			}
		}
		return seen["ErrImagePull"] && seen["ImagePullBackOff"]
	})
	c.waitEvent("missing", "Failed", "Failed to pull image \""+reg.Host+"/e2e/missing:v1\"", 10*time.Second)
	c.waitEvent("missing", "BackOff", "Back-off pulling image", 10*time.Second)
	if out := c.must("get", "pod", "missing"); !strings.Contains(out, "ErrImagePull") && !strings.Contains(out, "ImagePullBackOff") {
		t.Fatalf("drover get pod does not show the pull error:\n%s", out)
	}
}
