package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/droverhq/drover/node/runtime"
)

// containerProbes runs a container's startup, liveness and readiness
// probes, each on its own goroutine, and wakes the pod worker when a
// result changes.
type containerProbes struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu           sync.Mutex
	hasStartup   bool
	startupOK    bool
	hasReadiness bool
	readyOK      bool
	livenessBad  bool
}

func (p *containerProbes) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.hasStartup || p.startupOK
}

func (p *containerProbes) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.hasReadiness || p.readyOK
}

func (p *containerProbes) livenessFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.livenessBad
}

func (w *podWorker) startProbes(pod *corev1.Pod, c *corev1.Container, st *containerState) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &containerProbes{cancel: cancel, hasStartup: c.StartupProbe != nil, hasReadiness: c.ReadinessProbe != nil}
	st.probes = p
	id := st.id
	host := w.podIP
	if pod.Spec.HostNetwork || host == "" {
		host = "127.0.0.1"
	}
	run := func(kind string, pr *corev1.Probe, report func(ok bool) bool) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w.a.runProbe(ctx, pod, c, id, host, kind, pr, p, report)
		}()
	}
	if c.StartupProbe != nil {
		run("Startup", c.StartupProbe, func(ok bool) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if ok && !p.startupOK {
				p.startupOK = true
				return true
			}
			if !ok {
				// Failing the startup probe's threshold kills like liveness.
				p.livenessBad = true
				return true
			}
			return false
		})
	}
	if c.LivenessProbe != nil {
		run("Liveness", c.LivenessProbe, func(ok bool) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if !ok && !p.livenessBad {
				p.livenessBad = true
				return true
			}
			return false
		})
	}
	if c.ReadinessProbe != nil {
		run("Readiness", c.ReadinessProbe, func(ok bool) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if ok != p.readyOK {
				p.readyOK = ok
				return true
			}
			return false
		})
	}
}

func (w *podWorker) stopProbesOf(st *containerState) {
	if st.probes != nil {
		st.probes.cancel()
		st.probes.wg.Wait()
		st.probes = nil
	}
}

func (w *podWorker) stopProbes() {
	for _, st := range w.containers {
		w.stopProbesOf(st)
	}
}

// runProbe probes on the probe's period, applying the thresholds, and
// reports each settled result (report returns true when it changed
// something the worker must act on). Liveness and readiness wait for the
// startup probe.
func (a *Agent) runProbe(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, host, kind string, pr *corev1.Probe, ps *containerProbes, report func(bool) bool) {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	success := int(max(pr.SuccessThreshold, 1))
	failure := int(max(pr.FailureThreshold, 1))
	if !pause(ctx, time.Duration(pr.InitialDelaySeconds)*time.Second) {
		return
	}
	okRun, failRun := 0, 0
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if kind == "Startup" || ps.started() {
			err := a.probeOnce(ctx, c, id, host, pr, timeout)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
				a.events.event(pod, corev1.EventTypeWarning, "Unhealthy", fieldPath(c), "%s probe failed: %v", kind, err)
			}
			changed := false
			switch {
			case okRun >= success:
				changed = report(true)
				if kind == "Startup" {
					w := a.worker(pod.UID)
					if w != nil && changed {
						w.poke()
					}
					return // the startup probe is done once it succeeds
				}
			case failRun >= failure:
				changed = report(false)
			}
			if changed {
				if w := a.worker(pod.UID); w != nil {
					w.poke()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) worker(uid types.UID) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.workers[string(uid)]
}

// probeOnce runs one probe attempt: nil when it succeeded.
func (a *Agent) probeOnce(ctx context.Context, c *corev1.Container, id, host string, pr *corev1.Probe, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.Exec != nil:
		ex, ok := a.cfg.Runtime.(runtime.Execer)
		if !ok {
			return fmt.Errorf("the runtime cannot exec")
		}
		code, err := ex.Exec(ctx, id, runtime.ExecOptions{Args: pr.Exec.Command, Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with %d", pr.Exec.Command, code)
		}
		return nil
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		port, err := probePort(c, g.Port)
		if err != nil {
			return err
		}
		h := host
		if g.Host != "" {
			h = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		req, err := http.NewRequestWithContext(ctx, "GET", scheme+"://"+net.JoinHostPort(h, strconv.Itoa(port))+g.Path, nil)
		if err != nil {
			return err
		}
		for _, hd := range g.HTTPHeaders {
			req.Header.Set(hd.Name, hd.Value)
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case pr.TCPSocket != nil:
		port, err := probePort(c, pr.TCPSocket.Port)
		if err != nil {
			return err
		}
		h := host
		if pr.TCPSocket.Host != "" {
			h = pr.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		conn.Close()
		return nil
	}
	return fmt.Errorf("the probe has no handler")
}

// probeClient does not follow redirects off the pod or keep connections.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// probePort resolves a number or a named container port.
func probePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q is not a named port of container %s", p.StrVal, c.Name)
}
