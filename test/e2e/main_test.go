// Package e2e runs drover as users do: real `drover` processes, killed and
// restarted, talking over loopback TCP.
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore"
)

var droverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drover-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	droverBin = filepath.Join(dir, "drover")
	build := exec.Command("go", "build", "-o", droverBin, "github.com/droverhq/drover/cmd/drover")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build drover:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running `drover server`.
type proc struct {
	t    *testing.T
	id   string
	addr string
	dir  string
	args []string
	cmd  *exec.Cmd
	logs *logBuffer
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServerAt(t *testing.T, id, addr, dir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, id: id, addr: addr, dir: dir, logs: &logBuffer{}}
	p.args = append([]string{"server", "--id", id, "--data-dir", dir, "--listen", addr, "--election-timeout", "300ms", "--log-level", "debug"}, extra...)
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			dumpLogs(t, p)
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(droverBin, p.args...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.id, err)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

func dial(t *testing.T, addr string, tc *tls.Config) *raftstore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		c, err := raftstore.Dial(ctx, addr, tc)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if ctx.Err() != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitWritable polls until a write through addr succeeds.
func waitWritable(t *testing.T, addr string, tc *tls.Config, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := raftstore.Dial(ctx, addr, tc)
		if err == nil {
			_, err = c.Put(ctx, []byte("/e2e/probe"), []byte("x"))
			c.Close()
		}
		cancel()
		if err == nil {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no successful write through %s within %s: %v", addr, within, last)
}

// dumpLogs prints the last lines each process logged, skipping gossip's
// chatter.
func dumpLogs(t *testing.T, procs ...*proc) {
	for _, p := range procs {
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if l := sc.Text(); os.Getenv("E2E_GOSSIP_LOGS") != "" || !strings.Contains(l, "[DEBUG] memberlist") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 150 {
			lines = lines[len(lines)-150:]
		}
		for _, l := range lines {
			t.Logf("[%s] %s", p.id, l)
		}
	}
}

// gossipKey returns a fresh key from `drover keygen`.
func gossipKey(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(droverBin, "keygen").Output()
	if err != nil {
		t.Fatalf("drover keygen: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// master describes one `drover server` of a multi-process cluster: member,
// API and gossip ports on its own loopback address.
type master struct {
	*proc
	ip                  string
	member, api, gossip string
	kube                string // Kubernetes API
}

// startMaster starts master id on 127.0.0.<n> with ports base+0/1/2/3.
func startMaster(t *testing.T, id string, n, base int, dir string, extra ...string) *master {
	t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", n)
	m := &master{ip: ip,
		member: fmt.Sprintf("%s:%d", ip, base),
		api:    fmt.Sprintf("%s:%d", ip, base+1),
		gossip: fmt.Sprintf("%s:%d", ip, base+2)}
	m.kube = fmt.Sprintf("%s:%d", ip, base+3)
	args := append([]string{"--api", m.api, "--gossip", m.gossip, "--kube-api", m.kube}, extra...)
	m.proc = startServerAt(t, id, m.member, dir, args...)
	return m
}

// adminTLS loads the admin client credentials a master wrote.
func adminTLS(t *testing.T, dir string) *tls.Config {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	pkiDir := filepath.Join(dir, "pki")
	for {
		ca, err1 := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
		pair, err2 := tls.LoadX509KeyPair(filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key"))
		if err1 == nil && err2 == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin credentials in %s: %v %v", pkiDir, err1, err2)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
