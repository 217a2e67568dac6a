package imagetest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a registry on loopback, reached over plain HTTP (list Host
// in image.Config.InsecureRegistries).
type Registry struct {
	Host string              // 127.0.0.1:port
	Auth authn.Authenticator // what Push uses; anonymous unless set
}

// Ref is the full name of repo (with a tag or digest) on this registry.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Push pushes img as repo ("test/busybox:v1") and returns its full name.
func (r *Registry) Push(t testing.TB, repo string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repo), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := r.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref.String()
}

// PushIndex pushes an image index as repo and returns its full name.
func (r *Registry) PushIndex(t testing.TB, repo string, ii v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(repo), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := r.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	if err := remote.WriteIndex(ref, ii, remote.WithAuth(auth)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref.String()
}

// InProcess serves go-containerregistry's registry on 127.0.0.1 for the
// test's lifetime. Each middleware wraps the registry's handler (the
// first listed is outermost): to count requests, refuse some, or require
// a login (BasicAuth).
func InProcess(t testing.TB, middleware ...func(http.Handler) http.Handler) *Registry {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Registry{Host: srv.Listener.Addr().String()}
}

// BasicAuth requires HTTP basic authentication with user and password
// on every request, answering 401 with a Basic challenge as a registry
// behind a login does. go-containerregistry's registry has no auth of its
// own; this makes it a real registry behind real auth.
func BasicAuth(user, password string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="drover-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Counter counts requests by method and path.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Middleware counts each request as "METHOD PATH".
func (c *Counter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// Count is how many requests "METHOD PATH" got.
func (c *Counter) Count(methodPath string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[methodPath]
}

// Reset forgets the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

// DockerRegistryBinary is Debian's docker-registry (distribution 2.8).
const DockerRegistryBinary = "docker-registry"

// DockerRegistry runs Debian's docker-registry binary on a free loopback
// port, with its storage in a temporary directory, until the test ends.
// It skips the test if the binary is missing (and fails in CI, where
// .ci/run installs it).
func DockerRegistry(t testing.TB) *Registry {
	t.Helper()
	bin, err := exec.LookPath(DockerRegistryBinary)
	if err != nil {
		SkipUnlessCI(t, "docker-registry is not installed: apt-get install docker-registry")
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 { // a free port can be taken between probing and binding
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), host)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = startDockerRegistry(t, bin, cfgPath, host); lastErr == nil {
			return &Registry{Host: host}
		}
	}
	t.Fatalf("docker-registry did not start: %v", lastErr)
	return nil
}

func startDockerRegistry(t testing.TB, bin, cfgPath, host string) error {
	var out syncBuffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	// Poll /v2/ until it answers, the process exits, or the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() {
					stop()
					if t.Failed() {
						t.Logf("docker-registry output:\n%s", out.String())
					}
				})
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("docker-registry exited (%v): %s", err, out.String())
		case <-ctx.Done():
			stop()
			return fmt.Errorf("docker-registry on %s did not answer within 20s: %s", host, out.String())
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
