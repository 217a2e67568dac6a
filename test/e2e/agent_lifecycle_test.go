package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// The tests in agent_lifecycle_test.go and the files beside it
// (agent_*_test.go) each run a cluster of their own: masters on
// 127.0.0.31-33 and the agent on 127.0.0.41, on ports 19100 + 20*slot
// (masters: +0..+3, agent gossip and daemon: +10, +11; free for the test:
// +12..+19), pods in 10.253.<16*slot>.0/20, bridge drlc<slot>. No other e2e
// test uses these.
const (
	lcMasterIP  = 31
	lcAgentIP   = "127.0.0.41"
	lcPortBase  = 19100
	lcSlotPorts = 20
)

// Slots of the lifecycle tests.
const (
	slotBackoff = iota
	slotProbes
	slotOOM
	slotRegistry
	slotAgentRestart
	slotHostPort
	slotGraceful
)

// lifecycleCluster starts three masters and an agent in slot, the agent
// with a 1 s initial restart back-off (the kubelet's 10 s would make each
// crash loop take minutes) and extra flags; it waits for the node to be
// Ready.
func lifecycleCluster(t *testing.T, slot int, agentArgs ...string) *agentCluster {
	t.Helper()
	base := lcPortBase + lcSlotPorts*slot
	c := startAgentClusterWith(t, agentClusterConfig{
		masterIP:    lcMasterIP,
		masterPorts: base,
		agentIP:     lcAgentIP,
		agentPort:   base + 10,
		clusterCIDR: fmt.Sprintf("10.253.%d.0/20", 16*slot),
		bridge:      fmt.Sprintf("drlc%d", slot),
		node:        fmt.Sprintf("lc%d-%d", slot, os.Getpid()%100000),
		agentArgs:   append([]string{"--restart-backoff", "1s"}, agentArgs...),
	})
	c.waitOutput(`(?m)^`+c.node+`\s+Ready\s`, 60*time.Second, "get", "nodes")
	return c
}

// slotPort is a port of slot free for the test itself (n in 0..7).
func slotPort(slot, n int) int { return lcPortBase + lcSlotPorts*slot + 12 + n }

// api is a Go client with the admin kubeconfig.
func (c *agentCluster) api() *client.Client {
	c.t.Helper()
	if c.cl == nil {
		cl, _, err := client.NewFromKubeconfig(c.kc, "")
		if err != nil {
			c.t.Fatal(err)
		}
		c.cl = cl
	}
	return c.cl
}

// apply applies a manifest through the CLI.
func (c *agentCluster) apply(manifest string) {
	c.t.Helper()
	f, err := os.CreateTemp(c.t.TempDir(), "manifest-*.yaml")
	if err != nil {
		c.t.Fatal(err)
	}
	f.WriteString(manifest)
	f.Close()
	c.must("apply", "-f", f.Name())
}

func (c *agentCluster) getPod(name string) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.GetTyped[corev1.Pod](ctx, c.api().Resource(client.Pods).Namespace("default"), name)
}

// waitPod polls pod name until cond holds and returns it; on timeout the
// test fails with what the pod last looked like.
func (c *agentCluster) waitPod(name string, within time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var last *corev1.Pod
	var lastErr error
	for time.Now().Before(deadline) {
		p, err := c.getPod(name)
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	c.t.Fatalf("pod %s: %s did not happen within %s (last error %v); last seen:\n%s", name, what, within, lastErr, b)
	return nil
}

// podEvents lists the events about pod name.
func (c *agentCluster) podEvents(name string) []*corev1.Event {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, _, err := client.ListTyped[corev1.Event](ctx, c.api().Resource(client.Events).Namespace("default"), metav1.ListOptions{})
	if err != nil {
		c.t.Fatalf("list events: %v", err)
	}
	var out []*corev1.Event
	for _, e := range evs {
		if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent polls for an event about pod name with reason whose message
// contains substr.
func (c *agentCluster) waitEvent(pod, reason, substr string, within time.Duration) *corev1.Event {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var seen []string
	for time.Now().Before(deadline) {
		seen = seen[:0]
		for _, e := range c.podEvents(pod) {
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				return e
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Message)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("no %s event with %q about pod %s within %s; events:\n%s", reason, substr, pod, within, strings.Join(seen, "\n"))
	return nil
}

// waitGone polls until pod name no longer exists.
func (c *agentCluster) waitGone(name string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := c.getPod(name); client.IsNotFound(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("pod %s still exists after %s", name, within)
}

// ctr is the status of pod p's only container (or the named one).
func ctr(p *corev1.Pod) *corev1.ContainerStatus {
	if len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &p.Status.ContainerStatuses[0]
}

func running(p *corev1.Pod) bool {
	cs := ctr(p)
	return p.Status.Phase == corev1.PodRunning && cs != nil && cs.State.Running != nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerCgroups lists container id's cgroup directories (one per
// hierarchy) that exist.
func (c *agentCluster) containerCgroups(id string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*/drover", c.node, id))
	return dirs
}

// containerID strips the runtime prefix ("drover://") from a status's ID.
func containerID(cs *corev1.ContainerStatus) string {
	_, id, _ := strings.Cut(cs.ContainerID, "://")
	return id
}

const backoffPods = `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "echo crashing; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: once
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # Fails the first time, succeeds when restarted (emptyDir outlives
    # container restarts).
    command: ["sh", "-c", "if [ -e /data/ran ]; then exit 0; fi; touch /data/ran; exit 3"]
    volumeMounts: [{name: data, mountPath: /data}]
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: OnFailure
  containers:
  - name: done
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "exit 0"]
---
apiVersion: v1
kind: Pod
metadata: {name: fail}
spec:
  restartPolicy: Never
  containers:
  - name: fail
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "exit 2"]
`

// Restart policies with real containers. Always: a container exiting 1 is
// restarted again and again, its restart count only grows, between
// restarts it waits in CrashLoopBackOff with a back-off that doubles, its
// last termination (exit code 1, Error) is in lastState, the BackOff event
// is recorded and the previous attempt's logs stay readable. OnFailure: a
// failed container is restarted and the pod ends Succeeded once it exits
// 0; exit 0 at once is Succeeded without a restart. Never: exit 2 is
// phase Failed, not restarted.
func TestAgentRestartBackoff(t *testing.T) {
	c := lifecycleCluster(t, slotBackoff)
	start := time.Now()
	c.apply(backoffPods)

	// crash: watch the restart count grow through CrashLoopBackOff. As the
	// kubelet, the agent restarts the first exit at once; with
	// --restart-backoff 1s it then waits 1 s after the second exit, 2 s
	// after the third.
	backoffs := map[int32]string{} // restart count -> back-off in the waiting message
	maxRestarts := int32(0)
	p := c.waitPod("crash", 60*time.Second, "two restarts and CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := ctr(p)
		if cs == nil {
			return false
		}
		if cs.RestartCount < maxRestarts {
			t.Fatalf("restart count went down from %d to %d", maxRestarts, cs.RestartCount)
		}
		maxRestarts = cs.RestartCount
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			if !strings.Contains(w.Message, "restarting failed container=crash pod=crash") {
				t.Fatalf("CrashLoopBackOff message: %q", w.Message)
			}
			backoffs[cs.RestartCount], _, _ = strings.Cut(strings.TrimPrefix(w.Message, "back-off "), " ")
			if p.Status.Phase != corev1.PodRunning {
				t.Fatalf("a pod in CrashLoopBackOff under restartPolicy Always is %s, want Running", p.Status.Phase)
			}
		}
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := ctr(p)
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" {
		t.Fatalf("lastState after a crash: %+v", cs.LastTerminationState)
	}
	if cs.Ready || podReady(p) {
		t.Fatalf("a crash-looping container is ready")
	}
	// No back-off before the first restart; then it doubles: 1 s after the
	// second exit, 2 s after the third.
	if _, waited := backoffs[0]; waited || backoffs[1] != "1s" || backoffs[2] != "2s" {
		t.Fatalf("back-off by restart count: %v, want 1:1s 2:2s and none before the first restart", backoffs)
	}
	c.waitEvent("crash", "BackOff", "Back-off restarting failed container crash", 10*time.Second)
	if out := c.must("get", "pod", "crash"); !strings.Contains(out, "CrashLoopBackOff") {
		t.Fatalf("drover get pod does not show CrashLoopBackOff:\n%s", out)
	}
	if logs := c.must("logs", "crash", "--previous"); !strings.Contains(logs, "crashing") {
		t.Fatalf("logs --previous: %q", logs)
	}
	t.Logf("crash: restart 2 in CrashLoopBackOff %s after apply", time.Since(start).Round(time.Millisecond))

	// once (OnFailure): failed once, restarted, then succeeded.
	p = c.waitPod("once", 30*time.Second, "phase Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	cs = ctr(p)
	if cs.RestartCount != 1 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" {
		t.Fatalf("once: %+v", cs)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 3 {
		t.Fatalf("once: lastState %+v, want the exit 3 of the first attempt", cs.LastTerminationState)
	}

	// done (OnFailure, exit 0): Succeeded, never restarted.
	p = c.waitPod("done", 30*time.Second, "phase Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if cs = ctr(p); cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
		t.Fatalf("done: %+v", cs)
	}

	// fail (Never, exit 2): Failed with the exit code, never restarted.
	p = c.waitPod("fail", 30*time.Second, "phase Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	cs = ctr(p)
	if cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 2 || cs.State.Terminated.Reason != "Error" {
		t.Fatalf("fail: %+v", cs)
	}
	// Finished pods stay finished (the crash loop above took several
	// resyncs of every pod).
	for _, name := range []string{"done", "fail", "once"} {
		p, err := c.getPod(name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed || ctr(p).State.Terminated == nil {
			t.Fatalf("%s left its final state: %s %+v", name, p.Status.Phase, ctr(p).State)
		}
	}
}

const gracefulPods = `apiVersion: v1
kind: Pod
metadata: {name: polite}
spec:
  terminationGracePeriodSeconds: 30
  volumes: [{name: out, hostPath: {path: %[1]s, type: Directory}}]
  containers:
  - name: polite
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # On SIGTERM: note it, take 2 s to clean up, note that, exit 0.
    command: ["sh", "-c", "trap 'echo term >> /out/polite; sleep 2; echo done >> /out/polite; exit 0' TERM; echo started > /out/polite; sleep 3600 & wait"]
    volumeMounts: [{name: out, mountPath: /out}]
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 30
  volumes: [{name: out, hostPath: {path: %[1]s, type: Directory}}]
  containers:
  - name: stubborn
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # Notes SIGTERM and carries on.
    command: ["sh", "-c", "trap 'echo ignored >> /out/stubborn' TERM; echo started > /out/stubborn; while true; do sleep 1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
`

// Graceful termination with real signals. A pod deleted with
// --grace-period 10 whose container traps SIGTERM gets the signal, the
// two seconds its handler takes, and is gone as soon as it exited (not
// after the whole grace period); a container that ignores SIGTERM is
// SIGKILLed once the deletion's grace period (3 s, overriding the pod's
// 30) is over. Both leave no cgroup behind.
func TestAgentGracefulTermination(t *testing.T) {
	c := lifecycleCluster(t, slotGraceful)
	out := t.TempDir() // a hostPath volume: the containers' notes outlive them
	c.apply(fmt.Sprintf(gracefulPods, out))
	note := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return string(b)
	}

	// polite: SIGTERM handled, exit within the grace period.
	p := c.waitPod("polite", 30*time.Second, "running", running)
	id := containerID(ctr(p))
	if note("polite") != "started\n" {
		t.Fatalf("polite wrote %q before its deletion", note("polite"))
	}
	start := time.Now()
	c.must("delete", "pod", "polite", "--grace-period", "10")
	took := time.Since(start)
	t.Logf("polite: deleted in %s", took.Round(time.Millisecond))
	if got := note("polite"); got != "started\nterm\ndone\n" {
		t.Fatalf("polite's SIGTERM handler did not run to its end: %q", got)
	}
	if took < 2*time.Second || took > 8*time.Second {
		t.Fatalf("deleting polite took %s: want its 2 s handler, and no wait for the rest of the 10 s grace period", took)
	}
	c.waitEvent("polite", "Killing", "Stopping container polite", 10*time.Second)
	if left := c.containerCgroups(id); len(left) > 0 {
		t.Fatalf("polite's cgroups are left: %v", left)
	}

	// stubborn: SIGTERM ignored, SIGKILL after the grace period given with
	// the deletion.
	p = c.waitPod("stubborn", 30*time.Second, "running", running)
	id = containerID(ctr(p))
	start = time.Now()
	c.must("delete", "pod", "stubborn", "--grace-period", "3")
	took = time.Since(start)
	t.Logf("stubborn: deleted in %s", took.Round(time.Millisecond))
	if took < 3*time.Second || took > 10*time.Second {
		t.Fatalf("deleting stubborn took %s, want the 3 s grace period (not 0, not the pod's 30 s)", took)
	}
	if got := note("stubborn"); !strings.HasPrefix(got, "started\nignored\n") {
		t.Fatalf("stubborn did not get SIGTERM first: %q", got)
	}
	if left := c.containerCgroups(id); len(left) > 0 {
		t.Fatalf("stubborn's cgroups are left: %v", left)
	}
}

const agentRestartPods = `apiVersion: v1
kind: Pod
metadata: {name: exit7}
spec:
  restartPolicy: Never
  volumes: [{name: in, hostPath: {path: %[1]s, type: Directory}}]
  containers:
  - name: exit7
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    # Exits 7 once the test creates the file on the host (the agent is
    # down by then).
    command: ["sh", "-c", "until [ -e /in/exit ]; do sleep 0.1; done; exit 7"]
    volumeMounts: [{name: in, mountPath: /in}]
---
apiVersion: v1
kind: Pod
metadata: {name: again7}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: in, hostPath: {path: %[1]s, type: Directory}}]
  containers:
  - name: again7
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "until [ -e /in/exit ]; do sleep 0.1; done; exit 7"]
    volumeMounts: [{name: in, mountPath: /in}]
---
apiVersion: v1
kind: Pod
metadata: {name: gone}
spec:
  containers:
  - name: gone
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sleep", "3600"]
`

// What happens while the agent is down (kill -9) is not lost. Containers
// that exit meanwhile: their shims record the exit, and the restarted
// agent reports it — exit7 (Never) Failed with exit code 7 from the same
// container, again7 (Always) restarted with the exit 7 as lastState. A pod
// force-deleted meanwhile: the restarted agent removes its container,
// cgroups, root filesystem mount, network sandbox (netns, nat rules) and
// pod directory.
func TestAgentRestartKeepsExits(t *testing.T) {
	c := lifecycleCluster(t, slotAgentRestart)
	in := t.TempDir()
	c.apply(fmt.Sprintf(agentRestartPods, in))
	exit7 := c.waitPod("exit7", 30*time.Second, "running", running)
	again7 := c.waitPod("again7", 30*time.Second, "running", running)
	gone := c.waitPod("gone", 30*time.Second, "running", running)
	exit7ID, again7ID, goneID := containerID(ctr(exit7)), containerID(ctr(again7)), containerID(ctr(gone))
	goneUID := string(gone.UID)
	if len(c.containerCgroups(goneID)) == 0 {
		t.Fatalf("no cgroups for the running container %s", goneID)
	}

	c.agent.kill()
	c.must("delete", "pod", "gone", "--grace-period", "0", "--force")
	// Let exit7 and again7 exit while nobody watches but their shims.
	if err := os.WriteFile(filepath.Join(in, "exit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{exit7ID, again7ID} {
		c.waitCgroupEmpty(id, 20*time.Second)
	}
	if left := c.leftoversOf(goneUID, goneID); len(left) < 5 {
		t.Fatalf("with its agent down, the deleted pod's container, sandbox and mounts should still be there; found only:\n%s", strings.Join(left, "\n"))
	}
	if p, err := c.getPod("exit7"); err != nil || !running(p) {
		t.Fatalf("exit7's status changed with its agent down (%v): %+v", err, p)
	}

	start := time.Now()
	c.agent.start()
	p := c.waitPod("exit7", 60*time.Second, "phase Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	t.Logf("exit7: Failed %s after the agent restarted", time.Since(start).Round(time.Millisecond))
	cs := ctr(p)
	if term := cs.State.Terminated; term == nil || term.ExitCode != 7 || term.Reason != "Error" || term.ContainerID != "drover://"+exit7ID {
		t.Fatalf("exit7: %+v, want terminated with exit code 7 by %s", cs.State, exit7ID)
	}
	if cs.RestartCount != 0 {
		t.Fatalf("exit7 restarted under restartPolicy Never: %+v", cs)
	}
	p = c.waitPod("again7", 30*time.Second, "restarted", func(p *corev1.Pod) bool { return ctr(p).RestartCount >= 1 })
	if lt := ctr(p).LastTerminationState.Terminated; lt == nil || lt.ExitCode != 7 {
		t.Fatalf("again7: lastState %+v, want exit code 7", ctr(p).LastTerminationState)
	}

	// Everything of gone is removed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := c.leftoversOf(goneUID, goneID)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left of the pod deleted while the agent was down:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("gone: cleaned up %s after the agent restarted", time.Since(start).Round(time.Millisecond))
}

// waitCgroupEmpty waits until no process is left in container id's
// cgroups.
func (c *agentCluster) waitCgroupEmpty(id string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		procs := ""
		for _, dir := range c.containerCgroups(id) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			procs += string(b)
		}
		if strings.TrimSpace(procs) == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("container %s still has processes: %s", id, procs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leftoversOf lists what is left on the machine of pod uid and its
// container id.
func (c *agentCluster) leftoversOf(uid, id string) []string {
	var left []string
	for _, dir := range c.containerCgroups(id) {
		left = append(left, "cgroup "+dir)
	}
	for _, p := range []string{
		filepath.Join("/run/drover", c.node, id),              // runtime state
		filepath.Join(c.dataDir, "pods", uid),                 // volumes, logs
		filepath.Join(c.dataDir, "network", "netns", uid),     // network namespace
		filepath.Join(c.dataDir, "network", "sandboxes", uid), // sandbox state
	} {
		if _, err := os.Stat(p); err == nil {
			left = append(left, p)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(c.dataDir, "network", "sandboxes", uid+"*")); len(matches) > 0 {
		left = append(left, matches...)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, uid) {
			left = append(left, "mount "+l)
		}
	}
	nat, _ := exec.Command("iptables-save", "-t", "nat").Output()
	for _, l := range strings.Split(string(nat), "\n") {
		if strings.Contains(l, uid) {
			left = append(left, "nat rule "+l)
		}
	}
	return left
}
