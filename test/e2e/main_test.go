// Package e2e runs drover as users do: real `drover` processes, killed and
// restarted, talking over loopback TCP.
package e2e

import (
	"bufio"
	"context"
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

func startServer(t *testing.T, id, addr, dir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, id: id, addr: addr, dir: dir, logs: &logBuffer{}}
	p.args = append([]string{"server", "--id", id, "--data-dir", dir, "--listen", addr, "--election-timeout", "300ms", "--log-level", "debug"}, extra...)
	p.start()
	t.Cleanup(func() { p.kill() })
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

func dial(t *testing.T, addr string) *raftstore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		c, err := raftstore.Dial(ctx, addr)
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
func waitWritable(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := raftstore.Dial(ctx, addr)
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

func dumpLogs(t *testing.T, procs ...*proc) {
	for _, p := range procs {
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		n := 0
		for sc.Scan() && n < 200 {
			t.Logf("[%s] %s", p.id, sc.Text())
			n++
		}
	}
}
