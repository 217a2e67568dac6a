//go:build linux

package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests here make real network namespaces, a bridge and iptables rules
// on the host, so they need root. Each test has its own bridge, subnet
// (10.250.x.0/24, chosen from the test binary's pid and not present on the
// host), network name and state directory; traffic goes only to loopback
// and to addresses inside the test's own namespaces and bridge.

// requireHost skips a test that needs root and the CNI plugins, or fails
// it under CI, where they are installed (.ci/run).
func requireHost(t testing.TB) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: "+format, args...)
		}
		t.Skipf("skipping: "+format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, a bridge, iptables)")
	}
	found := false
	for _, d := range DefaultPluginDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			found = true
		}
	}
	if !found {
		skip("the CNI plugins are not installed in %v (apt-get install containernetworking-plugins)", DefaultPluginDirs)
	}
	for _, tool := range []string{"iptables", "iptables-save", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed (apt-get install iptables iproute2)", tool)
		}
	}
}

var envSeq atomic.Int32

// env is one test's network: a Manager and the names it uses.
type env struct {
	t    testing.TB
	cfg  Config
	m    *Manager
	cidr *net.IPNet
}

func newEnv(t testing.TB) *env {
	t.Helper()
	requireHost(t)
	n := envSeq.Add(1)
	pid := os.Getpid()
	cfg := Config{
		Name:     fmt.Sprintf("drover-test-%d-%d", pid, n),
		Bridge:   fmt.Sprintf("drt%d-%d", pid%10000000, n),
		PodCIDR:  freeSubnet(t, pid+int(n)).String(),
		StateDir: t.TempDir(),
		Logger:   testLogger(t),
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, cidr, _ := net.ParseCIDR(cfg.PodCIDR)
	e := &env{t: t, cfg: m.Config(), m: m, cidr: cidr}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup tears down whatever a failed test left, removes the bridge and
// closes the Manager; it runs before t.TempDir is removed.
func (e *env) cleanup() {
	ctx := context.Background()
	if e.m == nil {
		return
	}
	ids, err := e.m.List()
	if err != nil {
		e.t.Errorf("cleanup: List: %v", err)
	}
	for _, id := range ids {
		if err := e.m.Teardown(ctx, id); err != nil {
			e.t.Errorf("cleanup: Teardown %s: %v", id, err)
		}
	}
	if err := e.m.Cleanup(ctx); err != nil {
		e.t.Errorf("cleanup: Cleanup: %v", err)
	}
	if _, err := net.InterfaceByName(e.cfg.Bridge); err == nil {
		e.t.Errorf("cleanup: bridge %s still exists", e.cfg.Bridge)
	}
	if err := e.m.Close(); err != nil {
		e.t.Errorf("cleanup: Close: %v", err)
	}
}

// restart closes the Manager and opens a new one on the same StateDir, as
// a restarted agent does.
func (e *env) restart() {
	e.t.Helper()
	if err := e.m.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	m, err := New(e.cfg)
	if err != nil {
		e.t.Fatalf("New after restart: %v", err)
	}
	e.m = m
}

// freeSubnet picks a 10.250.x.0/24 that no host interface has an address
// in, starting from x = seed%256.
func freeSubnet(t testing.TB, seed int) *net.IPNet {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		x := (seed + i) % 256
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.250.%d.0/24", x))
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (cand.Contains(ipn.IP) || ipn.Contains(cand.IP)) {
				used = true
			}
		}
		if !used {
			return cand
		}
	}
	t.Fatal("no free 10.250.x.0/24 on this host")
	return nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends log lines to t.Log.
type testWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// inNetNS runs fn inside the network namespace at path.
func inNetNS(path string, fn func() error) error { return withNetNS(path, fn) }

// checkInterfaces checks that the sandbox has lo (up, 127.0.0.1) and eth0
// (up, with the sandbox's IP inside cidr) and nothing else.
func checkInterfaces(t *testing.T, sb *Sandbox, cidr *net.IPNet) {
	t.Helper()
	err := inNetNS(sb.NetNS, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		var names []string
		for _, ifc := range ifs {
			names = append(names, ifc.Name)
			addrs, err := ifc.Addrs()
			if err != nil {
				return err
			}
			has := func(ip net.IP) bool {
				return slices.ContainsFunc(addrs, func(a net.Addr) bool { return a.(*net.IPNet).IP.Equal(ip) })
			}
			switch ifc.Name {
			case "lo":
				if ifc.Flags&net.FlagUp == 0 || !has(net.IPv4(127, 0, 0, 1)) {
					return fmt.Errorf("lo: flags %v, addresses %v; want up with 127.0.0.1", ifc.Flags, addrs)
				}
			case "eth0":
				if ifc.Flags&net.FlagUp == 0 || !has(sb.IP) || !cidr.Contains(sb.IP) {
					return fmt.Errorf("eth0: flags %v, addresses %v; want up with %v in %v", ifc.Flags, addrs, sb.IP, cidr)
				}
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"eth0", "lo"}) {
			return fmt.Errorf("interfaces %v, want [eth0 lo]", names)
		}
		return nil
	})
	if err != nil {
		t.Errorf("sandbox %s: %v", sb.ID, err)
	}
}

// serve listens on addr inside the sandbox and answers every connection
// with "hello from <id>\n".
func serve(t *testing.T, sb *Sandbox, port int) {
	t.Helper()
	var ln net.Listener
	err := inNetNS(sb.NetNS, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(sb.IP.String(), fmt.Sprint(port)))
		return err
	})
	if err != nil {
		t.Fatalf("listen in sandbox %s: %v", sb.ID, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", sb.ID)
			c.Close()
		}
	})
}

// fetch connects to addr and returns the first line it gets.
func fetch(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// freePort returns a TCP port nothing on the host listens on right now.
func freePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// natSnapshot is what iptables-save shows of the nat table.
type natSnapshot struct {
	lines  []string
	chains map[string]bool
}

func saveNAT(t *testing.T) natSnapshot {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	s := natSnapshot{chains: map[string]bool{}}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		s.lines = append(s.lines, line)
		if name, ok := strings.CutPrefix(line, ":"); ok {
			s.chains[strings.Fields(name)[0]] = true
		}
	}
	return s
}

// mentioning returns the lines that name the network or an address of it.
func (s natSnapshot) mentioning(e *env) []string {
	var out []string
	prefix := strings.TrimSuffix(e.cidr.IP.String(), "0") // "10.250.x."
	for _, l := range s.lines {
		if strings.Contains(l, fmt.Sprintf(`name: \"%s\"`, e.cfg.Name)) || strings.Contains(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// newChains returns the chains in s that are not in before.
func (s natSnapshot) newChains(before natSnapshot) []string {
	var out []string
	for c := range s.chains {
		if !before.chains[c] {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// checkGone checks that nothing of the sandbox is left on the host: its
// netns mount and file, its lease, its libcni cache files, its state file,
// its host veth, and its nat rules and chains (per-sandbox chains are those
// that appeared while it existed, other than portmap's shared ones).
func (e *env) checkGone(t *testing.T, sb *Sandbox, before, during natSnapshot) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), sb.NetNS) {
		t.Errorf("%s: netns %s is still mounted", sb.ID, sb.NetNS)
	}
	if _, err := os.Lstat(sb.NetNS); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: netns file %s: %v, want it removed", sb.ID, sb.NetNS, err)
	}
	if sb.IP != nil {
		lease := filepath.Join(e.cfg.ipamDir(), e.cfg.Name, sb.IP.String())
		if _, err := os.Lstat(lease); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: IPAM lease %s: %v, want it released", sb.ID, lease, err)
		}
	}
	cached, _ := filepath.Glob(filepath.Join(e.cfg.cacheDir(), "results", "*-"+sb.ID+"-*"))
	if len(cached) > 0 {
		t.Errorf("%s: libcni cache files left: %v", sb.ID, cached)
	}
	if _, err := os.Lstat(statePath(e.cfg.sandboxDir(), sb.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: state file: %v, want it removed", sb.ID, err)
	}
	if sb.HostVeth != "" {
		if _, err := net.InterfaceByName(sb.HostVeth); err == nil {
			t.Errorf("%s: host veth %s still exists", sb.ID, sb.HostVeth)
		}
	}
	after := saveNAT(t)
	if left := after.mentioning(e); len(left) > 0 {
		t.Errorf("nat rules naming the network or its subnet left:\n%s", strings.Join(left, "\n"))
	}
	for _, c := range during.newChains(before) {
		if after.chains[c] && !strings.HasPrefix(c, "CNI-HOSTPORT-") {
			t.Errorf("nat chain %s, made while the sandboxes existed, is left", c)
		}
	}
}

func TestSetupTwoSandboxesReachable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	if l := before.mentioning(e); len(l) > 0 {
		t.Fatalf("nat rules for this test's network exist before it starts:\n%s", strings.Join(l, "\n"))
	}

	hostPort := freePort(t)
	t0 := time.Now()
	a, err := e.m.Setup(ctx, "sandbox-a", []PortMapping{{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP"}})
	if err != nil {
		t.Fatalf("Setup a: %v", err)
	}
	setupA := time.Since(t0)
	t0 = time.Now()
	b, err := e.m.Setup(ctx, "sandbox-b", nil)
	if err != nil {
		t.Fatalf("Setup b: %v", err)
	}
	setupB := time.Since(t0)
	t.Logf("Setup: a (first, creates the bridge, one host port) %v, b %v; a=%v b=%v", setupA, setupB, a.IP, b.IP)

	gw := slices.Clone(e.cidr.IP.To4())
	gw[3]++
	for _, sb := range []*Sandbox{a, b} {
		if !e.cidr.Contains(sb.IP) || !sb.Gateway.Equal(gw) || sb.NetNS != e.cfg.netnsPath(sb.ID) || sb.HostVeth == "" {
			t.Errorf("sandbox %+v: want an IP in %v, gateway %v, netns %s and a host veth", sb, e.cidr, gw, e.cfg.netnsPath(sb.ID))
		}
		checkInterfaces(t, sb, e.cidr)
	}
	if a.IP.Equal(b.IP) {
		t.Fatalf("both sandboxes got %v", a.IP)
	}
	if ids, err := e.m.List(); err != nil || !slices.Equal(ids, []string{"sandbox-a", "sandbox-b"}) {
		t.Errorf("List = %v, %v; want [sandbox-a sandbox-b]", ids, err)
	}
	during := saveNAT(t)
	if len(during.mentioning(e)) == 0 {
		t.Errorf("no nat rule names the network while sandboxes exist; the leftover check below would prove nothing")
	}

	serve(t, a, 8080)
	podAddr := net.JoinHostPort(a.IP.String(), "8080")
	want := "hello from sandbox-a"
	if got, err := fetch(podAddr); err != nil || got != want {
		t.Errorf("host -> %s: %q, %v; want %q", podAddr, got, err, want)
	}
	err = inNetNS(b.NetNS, func() error {
		got, err := fetch(podAddr)
		if err == nil && got != want {
			err = fmt.Errorf("got %q, want %q", got, want)
		}
		return err
	})
	if err != nil {
		t.Errorf("sandbox b -> %s: %v", podAddr, err)
	}
	hostAddr := fmt.Sprintf("127.0.0.1:%d", hostPort)
	if got, err := fetch(hostAddr); err != nil || got != want {
		t.Errorf("host -> %s (hostPort): %q, %v; want %q", hostAddr, got, err, want)
	}

	for _, sb := range []*Sandbox{a, b} {
		t0 := time.Now()
		if err := e.m.Teardown(ctx, sb.ID); err != nil {
			t.Fatalf("Teardown %s: %v", sb.ID, err)
		}
		t.Logf("Teardown %s: %v", sb.ID, time.Since(t0))
	}
	for _, sb := range []*Sandbox{a, b} {
		e.checkGone(t, sb, before, during)
	}
	if _, err := fetch(hostAddr); err == nil {
		t.Errorf("host port %s still answers after Teardown", hostAddr)
	}
	if ids, err := e.m.List(); err != nil || len(ids) != 0 {
		t.Errorf("List after Teardown = %v, %v; want none", ids, err)
	}
}

func TestSetupAndTeardownAreIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	ports := []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}
	first, err := e.m.Setup(ctx, "idem", ports)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t0 := time.Now()
	again, err := e.m.Setup(ctx, "idem", ports)
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	t.Logf("Setup of an existing sandbox: %v", time.Since(t0))
	if !again.IP.Equal(first.IP) || again.NetNS != first.NetNS || again.HostVeth != first.HostVeth {
		t.Errorf("second Setup = %+v, first %+v", again, first)
	}
	checkInterfaces(t, again, e.cidr)
	st, err := e.m.Status("idem")
	if err != nil || !st.IP.Equal(first.IP) || !st.Gateway.Equal(first.Gateway) {
		t.Errorf("Status = %+v, %v; want IP %v", st, err, first.IP)
	}
	during := saveNAT(t)
	for i := range 2 {
		if err := e.m.Teardown(ctx, "idem"); err != nil {
			t.Fatalf("Teardown #%d: %v", i+1, err)
		}
	}
	e.checkGone(t, first, before, during)
	if _, err := e.m.Status("idem"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status after Teardown: %v, want ErrNotFound", err)
	}
	if err := e.m.Teardown(ctx, "never-set-up"); err != nil {
		t.Errorf("Teardown of an unknown sandbox: %v", err)
	}
}

// Check finds a sandbox whose interface was removed behind the Manager's
// back; Teardown and Setup repair it.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	ports := []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}
	sb, err := e.m.Setup(ctx, "checked", ports)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t0 := time.Now()
	if err := e.m.Check("checked"); err != nil {
		t.Fatalf("Check of a fresh sandbox: %v", err)
	}
	t.Logf("Check: %v", time.Since(t0))
	if err := e.m.Check("unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Check of an unknown sandbox: %v, want ErrNotFound", err)
	}
	err = inNetNS(sb.NetNS, func() error {
		_, err := run(ctx, "ip", "link", "del", "eth0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Check("checked"); !errors.Is(err, ErrBroken) {
		t.Fatalf("Check without eth0: %v, want ErrBroken", err)
	}
	during := saveNAT(t)
	if err := e.m.Teardown(ctx, "checked"); err != nil {
		t.Fatalf("Teardown of a broken sandbox: %v", err)
	}
	e.checkGone(t, sb, before, during)
	again, err := e.m.Setup(ctx, "checked", ports)
	if err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	if err := e.m.Check("checked"); err != nil {
		t.Errorf("Check after repair: %v", err)
	}
	checkInterfaces(t, again, e.cidr)
	if err := unix.Unmount(again.NetNS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Check("checked"); !errors.Is(err, ErrBroken) {
		t.Errorf("Check without a netns: %v, want ErrBroken", err)
	}
}

// An agent that died after the plugins ran but before libcni cached the
// result calls Setup again: the plugins' state (host-local lease, veth,
// chains) is undone first, or host-local would refuse a second address for
// the same ID.
func TestSetupFinishesAnInterruptedSetup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	ports := []PortMapping{{HostPort: freePort(t), ContainerPort: 80}}
	sb, err := e.m.Setup(ctx, "interrupted", ports)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	// Forget the result: no libcni cache, no IP in the state file.
	cached, _ := filepath.Glob(filepath.Join(e.cfg.cacheDir(), "results", "*-interrupted-*"))
	if len(cached) != 2 {
		t.Fatalf("libcni cache files for the sandbox: %v, want 2 (lo and eth0)", cached)
	}
	for _, f := range cached {
		os.Remove(f)
	}
	st, err := readState(e.cfg.sandboxDir(), "interrupted")
	if err != nil {
		t.Fatal(err)
	}
	st.IP, st.Gateway, st.HostVeth = "", "", ""
	if err := writeState(e.cfg.sandboxDir(), st); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Status("interrupted"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status of a half set up sandbox: %v, want ErrNotFound", err)
	}
	e.restart()
	if ids, _ := e.m.List(); !slices.Equal(ids, []string{"interrupted"}) {
		t.Errorf("List = %v, want [interrupted]", ids)
	}

	again, err := e.m.Setup(ctx, "interrupted", ports)
	if err != nil {
		t.Fatalf("Setup after an interrupted setup: %v", err)
	}
	checkInterfaces(t, again, e.cidr)
	if sb.HostVeth == again.HostVeth {
		t.Errorf("host veth %s was not recreated", sb.HostVeth)
	}
	leases, _ := filepath.Glob(filepath.Join(e.cfg.ipamDir(), e.cfg.Name, e.cidr.IP.String()[:len(e.cidr.IP.String())-1]+"*"))
	if len(leases) != 1 {
		t.Errorf("IPAM leases %v, want exactly one", leases)
	}
	during := saveNAT(t)
	if err := e.m.Teardown(ctx, "interrupted"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	e.checkGone(t, again, before, during)
	e.checkGone(t, sb, before, during)
}

// Teardown works when the netns is already gone (removed by hand, or a
// reboot): CNI DEL still releases the lease and the port forwards, and the
// sweep removes the masquerade chain the bridge plugin cannot find.
func TestTeardownAfterNetNSIsGone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	sb, err := e.m.Setup(ctx, "lost-netns", []PortMapping{{HostPort: freePort(t), ContainerPort: 80}})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	during := saveNAT(t)
	if err := unix.Unmount(sb.NetNS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sb.NetNS); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.m.List(); !slices.Equal(ids, []string{"lost-netns"}) {
		t.Errorf("List = %v, want [lost-netns]", ids)
	}
	if err := e.m.Teardown(ctx, "lost-netns"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	e.checkGone(t, sb, before, during)
}

func TestRestartedManagerFindsAndTearsDownSandboxes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	var sbs []*Sandbox
	for _, id := range []string{"old-1", "old-2"} {
		sb, err := e.m.Setup(ctx, id, []PortMapping{{HostPort: freePort(t), ContainerPort: 80}})
		if err != nil {
			t.Fatalf("Setup %s: %v", id, err)
		}
		sbs = append(sbs, sb)
	}
	during := saveNAT(t)
	if _, err := New(e.cfg); !errors.Is(err, ErrLocked) {
		t.Errorf("a second Manager on the same StateDir: %v, want ErrLocked", err)
	}
	e.restart()
	ids, err := e.m.List()
	if err != nil || !slices.Equal(ids, []string{"old-1", "old-2"}) {
		t.Fatalf("List after restart = %v, %v; want [old-1 old-2]", ids, err)
	}
	for _, sb := range sbs {
		got, err := e.m.Status(sb.ID)
		if err != nil || !got.IP.Equal(sb.IP) || got.NetNS != sb.NetNS || !got.Gateway.Equal(sb.Gateway) || got.HostVeth != sb.HostVeth {
			t.Errorf("Status(%s) after restart = %+v, %v; want %+v", sb.ID, got, err, sb)
		}
	}
	if err := e.m.Cleanup(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("Cleanup with sandboxes: %v, want ErrBusy", err)
	}
	if _, err := net.InterfaceByName(e.cfg.Bridge); err != nil {
		t.Errorf("bridge after a refused Cleanup: %v", err)
	}
	for _, id := range ids {
		if err := e.m.Teardown(ctx, id); err != nil {
			t.Fatalf("Teardown %s: %v", id, err)
		}
	}
	for _, sb := range sbs {
		e.checkGone(t, sb, before, during)
	}
	if err := e.m.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := net.InterfaceByName(e.cfg.Bridge); err == nil {
		t.Errorf("bridge %s exists after Cleanup", e.cfg.Bridge)
	}
}

func TestConcurrentSetupAndTeardown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := saveNAT(t)
	const n = 6
	sbs := make([]*Sandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	ports := make([]int32, n)
	for i := range n {
		ports[i] = freePort(t)
	}
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("conc-%d", i)
			sbs[i], errs[i] = e.m.Setup(ctx, id, []PortMapping{{HostPort: ports[i], ContainerPort: 80}})
		})
	}
	wg.Wait()
	t.Logf("%d concurrent Setups: %v", n, time.Since(t0))
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Setup conc-%d: %v", i, errs[i])
		}
		if seen[sbs[i].IP.String()] {
			t.Errorf("IP %v given twice", sbs[i].IP)
		}
		seen[sbs[i].IP.String()] = true
		checkInterfaces(t, sbs[i], e.cidr)
	}
	during := saveNAT(t)
	t0 = time.Now()
	errs = make([]error, 2*n)
	for i := range 2 * n { // each sandbox torn down twice at once
		wg.Go(func() { errs[i] = e.m.Teardown(ctx, sbs[i%n].ID) })
	}
	wg.Wait()
	t.Logf("%d concurrent Teardowns (each twice): %v", n, time.Since(t0))
	for i := range 2 * n {
		if errs[i] != nil {
			t.Errorf("Teardown conc-%d: %v", i%n, errs[i])
		}
	}
	for i := range n {
		e.checkGone(t, sbs[i], before, during)
	}
}

// SetRoutes runs ip(8) in the caller's network namespace; the test calls it
// from a thread inside a namespace of its own, so the host's routes are
// never touched.
func TestSetRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := inNewNetNS(func() error {
		for _, args := range [][]string{
			{"link", "add", "rt0", "type", "veth", "peer", "name", "rt1"},
			{"addr", "add", "192.0.2.1/24", "dev", "rt0"},
			{"link", "set", "rt0", "up"},
			{"link", "set", "rt1", "up"},
		} {
			if _, err := run(ctx, "ip", args...); err != nil {
				return err
			}
		}
		routes := func() (string, error) {
			out, err := run(ctx, "ip", "-4", "route", "show")
			return string(out), err
		}
		check := func(want, notWant []string) error {
			got, err := routes()
			if err != nil {
				return err
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					return fmt.Errorf("routes:\n%s\nwant %q", got, w)
				}
			}
			for _, w := range notWant {
				if strings.Contains(got, w) {
					return fmt.Errorf("routes:\n%s\ndo not want %q", got, w)
				}
			}
			return nil
		}
		if err := e.m.SetRoutes(ctx, []Route{
			{CIDR: "198.51.100.0/24", Via: net.ParseIP("192.0.2.2")},
			{CIDR: "203.0.113.0/24", Via: net.ParseIP("192.0.2.3")},
		}); err != nil {
			return err
		}
		if err := check([]string{"198.51.100.0/24 via 192.0.2.2", "203.0.113.0/24 via 192.0.2.3"}, nil); err != nil {
			return err
		}
		// One moves to another node, one goes away.
		if err := e.m.SetRoutes(ctx, []Route{{CIDR: "198.51.100.0/24", Via: net.ParseIP("192.0.2.4")}}); err != nil {
			return err
		}
		if err := check([]string{"198.51.100.0/24 via 192.0.2.4"}, []string{"192.0.2.2", "203.0.113.0/24"}); err != nil {
			return err
		}
		if err := e.m.SetRoutes(ctx, nil); err != nil {
			return err
		}
		return check(nil, []string{"198.51.100.0/24", "203.0.113.0/24"})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Route{
		{{CIDR: e.cfg.PodCIDR, Via: net.ParseIP("192.0.2.2")}},
		{{CIDR: "198.51.100.0/24"}},
		{{CIDR: "nonsense", Via: net.ParseIP("192.0.2.2")}},
		{{CIDR: "198.51.100.0/24", Via: net.ParseIP("192.0.2.2")}, {CIDR: "198.51.100.0/24", Via: net.ParseIP("192.0.2.3")}},
	} {
		if err := e.m.SetRoutes(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetRoutes(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}

// inNewNetNS runs fn on a thread in a new, unnamed network namespace that
// disappears with the thread.
func inNewNetNS(fn func() error) error {
	errCh := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errCh <- err
			return
		}
		errCh <- fn()
	}()
	return <-errCh
}

func BenchmarkSetupTeardown(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	// The first Setup creates the bridge; leave it out.
	if _, err := e.m.Setup(ctx, "warm", nil); err != nil {
		b.Fatal(err)
	}
	defer e.m.Teardown(ctx, "warm")
	var setup, teardown time.Duration
	hostPort := freePort(b)
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		t0 := time.Now()
		if _, err := e.m.Setup(ctx, id, []PortMapping{{HostPort: hostPort, ContainerPort: 80}}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := e.m.Teardown(ctx, id); err != nil {
			b.Fatal(err)
		}
		setup += t1.Sub(t0)
		teardown += time.Since(t1)
	}
	b.ReportMetric(float64(setup.Microseconds())/float64(b.N)/1000, "setup-ms/op")
	b.ReportMetric(float64(teardown.Microseconds())/float64(b.N)/1000, "teardown-ms/op")
}
