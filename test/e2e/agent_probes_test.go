package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const probePods = `apiVersion: v1
kind: Pod
metadata: {name: ready-exec}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: live-http}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/healthz; exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: tcp-late}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: late
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # Opens port 9000 only once /tmp/open exists.
    command: ["sh", "-c", "until [ -e /tmp/open ]; do sleep 0.2; done; exec httpd -f -p 9000 -h /tmp"]
    readinessProbe:
      tcpSocket: {port: 9000}
      periodSeconds: 1
`

// Each kind of probe against real containers, driven from outside through
// drover exec. exec readiness: the pod turns Ready when the probed file
// appears and NotReady when it goes, without a restart. httpGet liveness
// (on a named port): when the served file is deleted the probe gets 404s,
// the container is restarted (Unhealthy and Killing events, the killed
// attempt in lastState) and, healthy again, stays up. tcpSocket readiness:
// NotReady while nothing listens (the probe's failures are events), Ready
// once the port opens.
func TestAgentProbes(t *testing.T) {
	c := lifecycleCluster(t, slotProbes)
	c.apply(probePods)

	// exec readiness.
	c.waitPod("ready-exec", 30*time.Second, "running, not ready", func(p *corev1.Pod) bool { return running(p) && !podReady(p) })
	c.waitEvent("ready-exec", "Unhealthy", "Readiness probe failed", 15*time.Second)
	c.must("exec", "ready-exec", "--", "touch", "/tmp/ready")
	start := time.Now()
	p := c.waitPod("ready-exec", 15*time.Second, "Ready after touch", func(p *corev1.Pod) bool { return podReady(p) && ctr(p).Ready })
	t.Logf("exec readiness: Ready %s after the file appeared", time.Since(start).Round(time.Millisecond))
	c.waitOutput(`(?m)^ready-exec\s+1/1\s+Running\s+0\s`, 10*time.Second, "get", "pod", "ready-exec")
	c.must("exec", "ready-exec", "--", "rm", "/tmp/ready")
	start = time.Now()
	p = c.waitPod("ready-exec", 15*time.Second, "NotReady after rm", func(p *corev1.Pod) bool { return !podReady(p) && !ctr(p).Ready })
	t.Logf("exec readiness: NotReady %s after the file went", time.Since(start).Round(time.Millisecond))
	if !running(p) || ctr(p).RestartCount != 0 {
		t.Fatalf("a failing readiness probe must not restart or stop the container: %s %+v", p.Status.Phase, ctr(p))
	}

	// httpGet liveness.
	p = c.waitPod("live-http", 30*time.Second, "running", running)
	first := containerID(ctr(p))
	c.must("exec", "live-http", "--", "rm", "/www/healthz")
	start = time.Now()
	p = c.waitPod("live-http", 30*time.Second, "restarted after its liveness probe failed", func(p *corev1.Pod) bool {
		return running(p) && ctr(p).RestartCount == 1
	})
	t.Logf("httpGet liveness: restarted %s after the file went", time.Since(start).Round(time.Millisecond))
	cs := ctr(p)
	if containerID(cs) == first {
		t.Fatalf("restart count 1 but the same container %s", first)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ContainerID != "drover://"+first {
		t.Fatalf("lastState is not the killed attempt %s: %+v", first, cs.LastTerminationState)
	}
	t.Logf("httpGet liveness: the killed attempt: exit code %d, %s", cs.LastTerminationState.Terminated.ExitCode, cs.LastTerminationState.Terminated.Reason)
	c.waitEvent("live-http", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404", 10*time.Second)
	c.waitEvent("live-http", "Killing", "Container web failed liveness probe, will be restarted", 10*time.Second)

	// tcpSocket readiness on a port that opens later.
	p = c.waitPod("tcp-late", 30*time.Second, "running, not ready", func(p *corev1.Pod) bool { return running(p) && !podReady(p) })
	c.waitEvent("tcp-late", "Unhealthy", "Readiness probe failed", 15*time.Second)
	if p, _ := c.getPod("tcp-late"); podReady(p) {
		t.Fatal("tcp-late is Ready while nothing listens on its port")
	}
	c.must("exec", "tcp-late", "--", "touch", "/tmp/open")
	start = time.Now()
	p = c.waitPod("tcp-late", 15*time.Second, "Ready once the port is open", func(p *corev1.Pod) bool { return podReady(p) && ctr(p).Ready })
	t.Logf("tcpSocket readiness: Ready %s after the port was opened", time.Since(start).Round(time.Millisecond))
	if ctr(p).RestartCount != 0 {
		t.Fatalf("tcp-late restarted: %+v", ctr(p))
	}

	// The restarted live-http container, healthy again, was not killed
	// again while the tcp probe part ran (several liveness periods; a
	// probe that runs before httpd listens may fail once, below the
	// threshold of 2).
	p, err := c.getPod("live-http")
	if err != nil {
		t.Fatal(err)
	}
	if cs := ctr(p); cs.RestartCount != 1 || cs.State.Running == nil {
		t.Fatalf("live-http after its restart: %+v", cs)
	}
}
