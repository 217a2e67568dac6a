package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const oomPods = `apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # tail keeps the whole "line" (100 MiB of zeros, no newline) in memory.
    command: ["sh", "-c", "echo allocating; head -c 100m /dev/zero | tail"]
    resources:
      limits: {memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: hog-always}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hog
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "head -c 100m /dev/zero | tail"]
    resources:
      limits: {memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: fits}
spec:
  restartPolicy: Never
  containers:
  - name: fits
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # The same under the limit: 8 MiB.
    command: ["sh", "-c", "head -c 8m /dev/zero | tail | wc -c"]
    resources:
      limits: {memory: 32Mi}
`

// resources.limits.memory is enforced on real containers and the kernel's
// OOM kill is reported as Kubernetes does: a container allocating past
// its 32Mi limit ends terminated with reason OOMKilled and exit code 137
// (the pod Failed under restartPolicy Never; under Always the OOM kill is
// lastState while it restarts), while the same allocation under the limit
// completes.
func TestAgentOOMKilled(t *testing.T) {
	c := lifecycleCluster(t, slotOOM)
	start := time.Now()
	c.apply(oomPods)

	p := c.waitPod("hog", 60*time.Second, "phase Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	t.Logf("hog: Failed %s after apply", time.Since(start).Round(time.Millisecond))
	cs := ctr(p)
	if term := cs.State.Terminated; term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Fatalf("hog: %+v, want terminated OOMKilled with exit code 137", cs.State)
	}
	if logs := c.must("logs", "hog"); !strings.Contains(logs, "allocating") {
		t.Fatalf("hog logs: %q", logs)
	}
	if out := c.must("get", "pod", "hog"); !strings.Contains(out, "OOMKilled") {
		t.Fatalf("drover get pod does not show OOMKilled:\n%s", out)
	}

	p = c.waitPod("hog-always", 60*time.Second, "restarted after an OOM kill", func(p *corev1.Pod) bool {
		cs := ctr(p)
		return cs != nil && cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil
	})
	if lt := ctr(p).LastTerminationState.Terminated; lt.Reason != "OOMKilled" || lt.ExitCode != 137 {
		t.Fatalf("hog-always: lastState %+v, want OOMKilled 137", lt)
	}

	p = c.waitPod("fits", 60*time.Second, "phase Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if logs := c.must("logs", "fits"); strings.TrimSpace(logs) != "8388608" {
		t.Fatalf("fits logs: %q", logs)
	}
}
