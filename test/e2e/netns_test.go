package e2e

// Network namespaces for partition tests: a private network that exists only
// inside namespaces this test creates, so nothing it does can reach (or be
// reached from) the host's network.
//
//	hub namespace:   bridge br0, ports h1..hN (veth ends)
//	host namespace i: lo, eth0 = 10.251.0.i/24 (the peer of hi)
//
// Nothing is created in the root namespace, so every run can use the same
// addresses; only namespace names must be unique (pid plus a random tag).
// Cutting host i off is `ip link set hi down` in the hub: from then on the
// bridge drops everything to and from it, silently, both ways, including
// packets of established connections. The test process reaches a host's own
// addresses from inside that host's namespace (nsDialer), so a client can
// still talk to a cut-off master, as a client on its side of the partition
// would.

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	netnsDir     = "/var/run/netns" // where `ip netns` keeps its namespaces
	netnsPrefix  = "drv-e2e-"
	nsSubnetBase = "10.251.0." // a /24 that exists only inside our namespaces
)

// nsNet is a bridge in a hub namespace and one namespace per host.
type nsNet struct {
	t     *testing.T
	name  string // unique prefix of every namespace of this network
	hub   string
	Hosts []nsHost
}

// nsHost is one host namespace.
type nsHost struct {
	NS   string // namespace name, for `ip netns exec`
	Addr string // its IPv4 address on the bridge
	port string // its veth end in the hub
}

// nsIP runs ip(8) and returns its combined output on error.
func nsIP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNSNet builds a network of n hosts, or skips the test when network
// namespaces cannot be made here (not root, no ip(8), not permitted).
// Everything is removed in t.Cleanup.
func newNSNet(t *testing.T, n int) *nsNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run the e2e tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: ip(8) from iproute2 is not installed; it is needed to create network namespaces")
	}
	removeStaleNamespaces(t)
	name := fmt.Sprintf("%s%d-%04x-", netnsPrefix, os.Getpid(), rand.Intn(1<<16))
	nw := &nsNet{t: t, name: name, hub: name + "hub"}
	if err := nsIP("netns", "add", nw.hub); err != nil {
		t.Skipf("skipping: cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { nw.deleteNS(nw.hub) })
	must := func(args ...string) {
		t.Helper()
		if err := nsIP(args...); err != nil {
			t.Fatalf("set up the test network: %v", err)
		}
	}
	must("-n", nw.hub, "link", "set", "lo", "up")
	must("-n", nw.hub, "link", "add", "br0", "type", "bridge")
	must("-n", nw.hub, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		h := nsHost{NS: fmt.Sprintf("%sm%d", name, i), Addr: nsSubnetBase + strconv.Itoa(i), port: fmt.Sprintf("h%d", i)}
		must("netns", "add", h.NS)
		t.Cleanup(func() { nw.deleteNS(h.NS) })
		must("-n", h.NS, "link", "set", "lo", "up")
		must("-n", nw.hub, "link", "add", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
		must("-n", nw.hub, "link", "set", h.port, "master", "br0")
		must("-n", nw.hub, "link", "set", h.port, "up")
		must("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
		must("-n", h.NS, "link", "set", "eth0", "up")
		nw.Hosts = append(nw.Hosts, h)
	}
	return nw
}

func (nw *nsNet) deleteNS(ns string) {
	if err := nsIP("netns", "del", ns); err != nil {
		nw.t.Logf("cleanup: %v", err)
	}
}

// Cut disconnects host i (0-based) from the bridge; Heal reconnects it.
func (nw *nsNet) Cut(i int) error  { return nsIP("-n", nw.hub, "link", "set", nw.Hosts[i].port, "down") }
func (nw *nsNet) Heal(i int) error { return nsIP("-n", nw.hub, "link", "set", nw.Hosts[i].port, "up") }

// Command returns a command that runs inside host i's namespace. It is
// killed if the test process dies, so a crashed run leaves no servers behind.
func (nw *nsNet) Command(i int, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", nw.Hosts[i].NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

var staleNS = regexp.MustCompile(`^` + regexp.QuoteMeta(netnsPrefix) + `(\d+)-[0-9a-f]{4}-`)

// removeStaleNamespaces deletes namespaces left by earlier runs of these
// tests whose process is gone (killed before its cleanup ran).
func removeStaleNamespaces(t *testing.T) {
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		m := staleNS.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if err := nsIP("netns", "del", e.Name()); err == nil {
			t.Logf("removed namespace %s left by an earlier run (pid %d is gone)", e.Name(), pid)
		}
	}
}

// nsDialer returns a dialer whose sockets live in namespace ns: it switches
// one locked OS thread into ns just for socket creation and connect, then
// back. A socket stays in the namespace it was created in.
func nsDialer(ns string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			c, err, restored := dialInNS(ctx, ns, addr)
			if restored {
				runtime.UnlockOSThread()
			} // else the thread is in the wrong namespace: let it die with this goroutine
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

func dialInNS(ctx context.Context, ns, addr string) (c net.Conn, err error, restored bool) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err, true
	}
	defer self.Close()
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return nil, err, true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns %s: %w", ns, err), true
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, "tcp", addr)
	if serr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); serr != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("setns back from %s: %w", ns, serr), false
	}
	return c, err, true
}
