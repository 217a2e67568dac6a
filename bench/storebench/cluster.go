package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/droverhq/drover/raftstore/pki"
)

// member is one server process of a cluster.
type member struct {
	name     string
	bin      string
	args     []string
	dir      string // data dir
	endpoint string // client (etcd v3 API) address host:port
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{}
}

func (m *member) start() error {
	lf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The servers die with the generator, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	m.cmd = cmd
	done := make(chan struct{})
	m.done = done
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	registerChild(cmd.Process.Pid)
	return nil
}

func (m *member) pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

func (m *member) running() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (no shutdown code runs) and waits for the exit.
func (m *member) kill() {
	if !m.running() {
		return
	}
	pid := m.cmd.Process.Pid
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	unregisterChild(pid)
}

// cluster is a running 3-member cluster of one store.
type cluster struct {
	kind      string // "drover" or "etcd"
	dir       string
	members   []*member
	tls       *tls.Config
	endpoints []string
}

func (c *cluster) stop() {
	for _, m := range c.members {
		m.kill()
	}
}

func (c *cluster) pids() []int {
	var p []int
	for _, m := range c.members {
		if m.running() {
			p = append(p, m.pid())
		}
	}
	return p
}

func (c *cluster) client(endpoints ...string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = c.endpoints
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         c.tls,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// Keep-alive off, as both servers see the same client either way.
	})
}

// clients opens n clients, each given all endpoints.
func (c *cluster) clients(n int, endpoints ...string) ([]*clientv3.Client, error) {
	var out []*clientv3.Client
	for i := 0; i < n; i++ {
		cli, err := c.client(endpoints...)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, cli)
	}
	return out, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// status asks one member for its status through a fresh connection.
func (c *cluster) status(ctx context.Context, ep string) (*clientv3.StatusResponse, error) {
	cli, err := c.client(ep)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return cli.Status(ctx, ep)
}

// leader returns the index of the member that reports itself leader.
func (c *cluster) leader(ctx context.Context) (int, error) {
	var last error
	for i, m := range c.members {
		if !m.running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.status(sctx, m.endpoint)
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Leader != 0 && st.Header.MemberId == st.Leader {
			return i, nil
		}
	}
	if last == nil {
		last = errors.New("no member reports itself leader")
	}
	return -1, last
}

// memberReady reports whether member i serves a linearizable read on its own
// (it knows a leader and has caught up to its read index) and agrees on the
// leader.
func (c *cluster) memberReady(ctx context.Context, i int) error {
	ep := c.members[i].endpoint
	cli, err := c.client(ep)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := cli.Status(rctx, ep)
	if err != nil {
		return err
	}
	if st.Leader == 0 {
		return fmt.Errorf("%s: no leader", c.members[i].name)
	}
	if _, err := cli.Get(rctx, "/bench/ready"); err != nil {
		return fmt.Errorf("%s: linearizable get: %w", c.members[i].name, err)
	}
	return nil
}

// waitReady waits until a write through all endpoints succeeds and every
// running member serves linearizable reads.
func (c *cluster) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		last = c.readyOnce(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s cluster not ready within %s: %v (logs in %s)", c.kind, within, last, c.dir)
		case <-time.After(100 * time.Millisecond):
		}
		for _, m := range c.members {
			if m.cmd != nil && !m.running() {
				return fmt.Errorf("%s exited; see %s", m.name, m.logPath)
			}
		}
	}
}

func (c *cluster) readyOnce(ctx context.Context) error {
	cli, err := c.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cli.Put(pctx, "/bench/ready", "1")
	cancel()
	if err != nil {
		return err
	}
	for i, m := range c.members {
		if !m.running() {
			continue
		}
		if err := c.memberReady(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// checkFree fails early if another process holds one of the addresses.
func checkFree(addrs ...string) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("address %s is in use (another run? use -port-offset): %w", a, err)
		}
		ln.Close()
	}
	return nil
}

// startDrover starts a 3-master drover cluster with TLS (always on outside
// --dev) on hosts[0..2], waits for the admin credentials and readiness.
func startDrover(ctx context.Context, o *options, dir string) (*cluster, error) {
	keyOut, err := exec.Command(o.droverBin, "keygen").Output()
	if err != nil {
		return nil, fmt.Errorf("drover keygen: %w", err)
	}
	key := strings.TrimSpace(string(keyOut))
	c := &cluster{kind: "drover", dir: dir}
	var addrs []string
	for i, h := range o.droverHosts {
		memberAddr := net.JoinHostPort(h, strconv.Itoa(7380+o.portOffset))
		api := net.JoinHostPort(h, strconv.Itoa(7379+o.portOffset))
		gossip := net.JoinHostPort(h, strconv.Itoa(7946+o.portOffset))
		addrs = append(addrs, memberAddr, api, gossip)
		name := fmt.Sprintf("m%d", i+1)
		md := filepath.Join(dir, name)
		args := []string{"server", "--id", name, "--data-dir", md,
			"--listen", memberAddr, "--api", api, "--gossip", gossip,
			"--bootstrap-expect", "3", "--encrypt", key,
			"--election-timeout", o.droverElection.String()}
		if i > 0 {
			args = append(args, "--join", net.JoinHostPort(o.droverHosts[0], strconv.Itoa(7946+o.portOffset)))
		}
		args = append(args, o.droverExtra...)
		c.members = append(c.members, &member{name: "drover-" + name, bin: o.droverBin, args: args, dir: md,
			endpoint: api, logPath: filepath.Join(dir, name+".log")})
		c.endpoints = append(c.endpoints, api)
	}
	if err := checkFree(addrs...); err != nil {
		return nil, err
	}
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	// Client credentials of the first master, once the cluster CA is settled.
	pkiDir := filepath.Join(c.members[0].dir, "pki")
	deadline := time.Now().Add(60 * time.Second)
	for {
		tc, err := loadClientTLS(filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key"))
		if err == nil {
			c.tls = tc
			break
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("drover: no admin credentials in %s: %v", pkiDir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startEtcd starts a 3-member etcd cluster. With TLS (the default), client
// and peer traffic use mutual TLS with certificates from a fresh CA made
// with drover's pki package (ECDSA P-256, as drover's own).
func startEtcd(ctx context.Context, o *options, dir string) (*cluster, error) {
	c := &cluster{kind: "etcd", dir: dir}
	scheme := "http"
	var tlsArgs []string
	if o.etcdTLS {
		scheme = "https"
		ca, err := pki.NewCA("storebench etcd CA")
		if err != nil {
			return nil, err
		}
		pkiDir := filepath.Join(dir, "pki")
		if err := ca.Save(pkiDir); err != nil {
			return nil, err
		}
		hosts := append([]string{"localhost", "127.0.0.1"}, o.etcdHosts...)
		_, certPEM, keyPEM, err := ca.Issue("etcd", hosts)
		if err != nil {
			return nil, err
		}
		_, ccert, ckey, err := ca.Issue("bench-client", nil)
		if err != nil {
			return nil, err
		}
		for name, b := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM, "client.crt": ccert, "client.key": ckey} {
			if err := os.WriteFile(filepath.Join(pkiDir, name), b, 0o600); err != nil {
				return nil, err
			}
		}
		caFile := filepath.Join(pkiDir, "ca.crt")
		crt, key := filepath.Join(pkiDir, "server.crt"), filepath.Join(pkiDir, "server.key")
		tlsArgs = []string{"--cert-file", crt, "--key-file", key, "--client-cert-auth", "--trusted-ca-file", caFile,
			"--peer-cert-file", crt, "--peer-key-file", key, "--peer-client-cert-auth", "--peer-trusted-ca-file", caFile}
		tc, err := loadClientTLS(caFile, filepath.Join(pkiDir, "client.crt"), filepath.Join(pkiDir, "client.key"))
		if err != nil {
			return nil, err
		}
		c.tls = tc
	}
	var initial []string
	var addrs []string
	for i, h := range o.etcdHosts {
		peer := net.JoinHostPort(h, strconv.Itoa(2380+o.portOffset))
		initial = append(initial, fmt.Sprintf("e%d=%s://%s", i+1, scheme, peer))
	}
	token := fmt.Sprintf("storebench-%d", time.Now().UnixNano())
	for i, h := range o.etcdHosts {
		name := fmt.Sprintf("e%d", i+1)
		client := net.JoinHostPort(h, strconv.Itoa(2379+o.portOffset))
		peer := net.JoinHostPort(h, strconv.Itoa(2380+o.portOffset))
		addrs = append(addrs, client, peer)
		md := filepath.Join(dir, name)
		args := []string{"--name", name, "--data-dir", md,
			"--listen-client-urls", scheme + "://" + client, "--advertise-client-urls", scheme + "://" + client,
			"--listen-peer-urls", scheme + "://" + peer, "--initial-advertise-peer-urls", scheme + "://" + peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--heartbeat-interval", strconv.Itoa(o.etcdHeartbeatMS), "--election-timeout", strconv.Itoa(o.etcdElectionMS),
			"--snapshot-count", strconv.Itoa(o.etcdSnapshotCount),
			"--logger", "zap", "--log-level", "warn"}
		args = append(args, tlsArgs...)
		args = append(args, o.etcdExtra...)
		c.members = append(c.members, &member{name: "etcd-" + name, bin: o.etcdBin, args: args, dir: md,
			endpoint: client, logPath: filepath.Join(dir, name+".log")})
		c.endpoints = append(c.endpoints, client)
	}
	if err := checkFree(addrs...); err != nil {
		return nil, err
	}
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func loadClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

func clusterCPU(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		t += procCPU(p)
	}
	return t
}

// procRSS is VmRSS from /proc/<pid>/status, in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// dirSize sums the disk space allocated to the regular files under dir (as
// du does; etcd preallocates 64 MB WAL segments, and they count).
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// machineBusy is the CPU time all processes used: user, nice and system of
// the aggregate cpu line of /proc/stat (interrupt time is left out, as much
// of it is this benchmark's own loopback traffic).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i > 2 {
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}

// allCPU maps every process to its command name and CPU time, to name the
// other processes that competed for the CPU during a window.
func allCPU() map[int]procSample {
	out := map[int]procSample{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		out[pid] = procSample{comm: s[i+1 : j], cpu: procCPU(pid)}
	}
	return out
}

type procSample struct {
	comm string
	cpu  time.Duration
}

// topOthers names the processes, other than skip, that used the most CPU
// between two samples.
func topOthers(a, b map[int]procSample, skip []int, window time.Duration, n int) string {
	type use struct {
		name  string
		cores float64
	}
	skipped := map[int]bool{os.Getpid(): true}
	for _, p := range skip {
		skipped[p] = true
	}
	var uses []use
	for pid, s1 := range b {
		if skipped[pid] {
			continue
		}
		d := s1.cpu - a[pid].cpu
		if d > 0 {
			uses = append(uses, use{fmt.Sprintf("%s[%d]", s1.comm, pid), d.Seconds() / window.Seconds()})
		}
	}
	slices.SortFunc(uses, func(x, y use) int { return cmp.Compare(y.cores, x.cores) })
	var parts []string
	for i := 0; i < len(uses) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s %.2f", uses[i].name, uses[i].cores))
	}
	return strings.Join(parts, ", ")
}
