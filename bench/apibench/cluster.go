package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

// master is one `drover server` process.
type master struct {
	id      string
	ip      string
	dir     string
	logPath string
	kubeAPI string // host:port of its Kubernetes API
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
}

func (m *master) pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

func (m *master) running() bool {
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

// cluster is three masters on 127.0.0.1-3.
type cluster struct {
	bin     string
	dir     string
	masters []*master
	token   string
	tls     *tls.Config
}

// moduleRoot walks up from the working directory to go.mod.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("go.mod not found above the working directory; run from the drover checkout or give -drover")
		}
		d = up
	}
}

// buildBinary builds pkg (a main package path relative to the module root)
// into dir.
func buildBinary(pkg, dir, name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// portsFree reports whether every (ip, port) can be bound for TCP, and the
// gossip port for UDP too.
func portsFree(ips []string, base int) bool {
	for _, ip := range ips {
		for off := 0; off < 4; off++ {
			addr := net.JoinHostPort(ip, strconv.Itoa(base+off))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return false
			}
			ln.Close()
			if off == 2 {
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					return false
				}
				pc.Close()
			}
		}
	}
	return true
}

// pickBase finds a base port whose member/API/gossip/Kubernetes API ports
// (base..base+3) are free on every address, below the ephemeral range.
func pickBase(ips []string, want int) (int, error) {
	if want > 0 {
		if !portsFree(ips, want) {
			return 0, fmt.Errorf("ports %d-%d are not free on %v", want, want+3, ips)
		}
		return want, nil
	}
	start := 21000 + (os.Getpid()%200)*40
	for i := 0; i < 200; i++ {
		base := 21000 + (start-21000+i*40)%8000
		if portsFree(ips, base) {
			return base, nil
		}
	}
	return 0, errors.New("no free port range found")
}

// startCluster starts three masters that bootstrap together with gossip
// encryption and TLS, as an operator would (`--bootstrap-expect 3 --join`).
func startCluster(bin, dir string, basePort int, extraEnv []string) (*cluster, error) {
	key, err := exec.Command(bin, "keygen").Output()
	if err != nil {
		return nil, fmt.Errorf("%s keygen: %w", bin, err)
	}
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	base, err := pickBase(ips, basePort)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir}
	firstGossip := net.JoinHostPort(ips[0], strconv.Itoa(base+2))
	for i, ip := range ips {
		m := &master{id: fmt.Sprintf("m%d", i+1), ip: ip, dir: filepath.Join(dir, fmt.Sprintf("m%d", i+1)),
			logPath: filepath.Join(dir, fmt.Sprintf("m%d.log", i+1)),
			kubeAPI: net.JoinHostPort(ip, strconv.Itoa(base+3))}
		m.args = []string{"server", "--id", m.id, "--data-dir", m.dir,
			"--listen", net.JoinHostPort(ip, strconv.Itoa(base)),
			"--api", net.JoinHostPort(ip, strconv.Itoa(base+1)),
			"--gossip", net.JoinHostPort(ip, strconv.Itoa(base+2)),
			"--kube-api", m.kubeAPI,
			"--bootstrap-expect", "3", "--encrypt", strings.TrimSpace(string(key))}
		if i > 0 {
			m.args = append(m.args, "--join", firstGossip)
		}
		if err := m.start(bin, extraEnv); err != nil {
			c.stop()
			return nil, err
		}
		c.masters = append(c.masters, m)
	}
	return c, nil
}

func (m *master) start(bin string, extraEnv []string) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	lf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), extraEnv...)
	// The masters die with the generator, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", m.id, err)
	}
	m.cmd = cmd
	m.done = make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(m.done) }()
	return nil
}

// stop sends SIGTERM (a clean stop lets a profiling wrapper finish) and
// SIGKILL after a grace period.
func (c *cluster) stop() {
	for _, m := range c.masters {
		if m.running() {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range c.masters {
		if !m.running() {
			continue
		}
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			m.cmd.Process.Signal(syscall.SIGKILL)
			<-m.done
		}
	}
}

func (c *cluster) pids() []int {
	var out []int
	for _, m := range c.masters {
		out = append(out, m.pid())
	}
	return out
}

// kubeconfig is the part of admin.kubeconfig the generator uses.
type kubeconfig struct {
	Clusters []struct {
		Cluster struct {
			Server string `json:"server"`
			CAData string `json:"certificate-authority-data"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	} `json:"users"`
}

// waitReady waits for every master's admin.kubeconfig (written once the
// cluster has formed and agreed on its CA), loads the token and CA, and
// waits until every master answers an authenticated, linearizable read.
func (c *cluster) waitReady(ctx context.Context) error {
	pool := x509.NewCertPool()
	for _, m := range c.masters {
		path := filepath.Join(m.dir, "admin.kubeconfig")
		var b []byte
		for {
			var err error
			if b, err = os.ReadFile(path); err == nil && len(b) > 0 {
				break
			}
			if !m.running() {
				return fmt.Errorf("%s exited before writing %s (log: %s)", m.id, path, m.logPath)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w (log: %s)", path, ctx.Err(), m.logPath)
			case <-time.After(100 * time.Millisecond):
			}
		}
		var kc kubeconfig
		if err := yaml.Unmarshal(b, &kc); err != nil || len(kc.Clusters) == 0 || len(kc.Users) == 0 {
			return fmt.Errorf("parse %s: %v", path, err)
		}
		if want := "https://" + m.kubeAPI; kc.Clusters[0].Cluster.Server != want {
			return fmt.Errorf("%s names server %s, want %s", path, kc.Clusters[0].Cluster.Server, want)
		}
		ca, err := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CAData)
		if err != nil || !pool.AppendCertsFromPEM(ca) {
			return fmt.Errorf("%s: bad certificate-authority-data", path)
		}
		tok := kc.Users[0].User.Token
		if c.token != "" && tok != c.token {
			return fmt.Errorf("%s has a different admin token than m1's", path)
		}
		c.token = tok
	}
	c.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// Every master answers a linearizable GET of the default namespace.
	tr := &http.Transport{TLSClientConfig: c.tls.Clone()}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, m := range c.masters {
		for {
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+m.kubeAPI+"/api/v1/namespaces/default", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s never served GET namespaces/default: %v (log: %s)", m.id, err, m.logPath)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// procStat is a process's CPU time and memory from /proc.
type procStat struct {
	CPU   time.Duration // utime + stime
	RSS   int64         // VmRSS, bytes
	Anon  int64         // RssAnon: heap, stacks
	File  int64         // RssFile: mapped files (the bbolt Raft log) and the binary
	HWM   int64         // VmHWM (peak RSS), bytes
	Alive bool
}

const clkTck = 100 // USER_HZ on Linux

func readProc(pid int) procStat {
	var ps procStat
	if pid <= 0 {
		return ps
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		// f[0] is the state (field 3); utime and stime are fields 14 and 15.
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ps.CPU = time.Duration(u+st) * time.Second / clkTck
			ps.Alive = f[0] != "Z"
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			n, _ := strconv.ParseInt(f[0], 10, 64)
			switch k {
			case "VmRSS":
				ps.RSS = n << 10
			case "VmHWM":
				ps.HWM = n << 10
			case "RssAnon":
				ps.Anon = n << 10
			case "RssFile":
				ps.File = n << 10
			}
		}
	}
	return ps
}

// machineBusy is the non-idle CPU time of the whole machine (/proc/stat).
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
		n, _ := strconv.ParseInt(v, 10, 64)
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}

// dirSize is the bytes of regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// leader asks the cluster (drover raft status) who leads, and in which term.
func (c *cluster) leader() string {
	m := c.masters[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.bin, "raft", "status", "--endpoint", m.args[6], "--data-dir", m.dir).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	leader, term := "", ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "leader: "); ok {
			leader, _, _ = strings.Cut(v, " ")
		}
		f := strings.Fields(line)
		if len(f) > 4 && f[3] == "Leader" {
			term = f[4]
		}
	}
	if leader == "" {
		return "none"
	}
	return leader + " (term " + term + ")"
}
