package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/runtime"
)

// Back-off between restarts of a crashing container (and between image
// pulls that fail), doubling up to the cap, as the kubelet does.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	// backoffReset: a container that ran this long resets its back-off.
	backoffReset = 10 * time.Minute
)

// containerState is what the worker remembers about one container of its
// pod between syncs.
type containerState struct {
	name      string
	init      bool
	attempt   int    // restart count
	id        string // current runtime container; "" before the first start
	startedAt time.Time
	status    *runtime.Status // last observed

	waitingReason, waitingMessage string
	backoff                       time.Duration // the wait before the next start
	nextBackoff                   time.Duration // the wait after the next exit
	backoffUntil                  time.Time
	lastTerminated                *corev1.ContainerStateTerminated

	probes *containerProbes // nil when not running
}

// podWorker drives one pod to its desired state. Syncs run on its own
// goroutine only; update and poke may be called from anywhere.
type podWorker struct {
	a   *Agent
	mu  sync.Mutex
	pod *corev1.Pod // newest seen; nil once deleted from the API
	gen int         // bumps on every update
	// wake is signalled on updates, pokes and probe results.
	wake chan struct{}
	quit chan struct{}
	once sync.Once

	knownUID string // the pod's UID, kept after the pod is deleted

	// Owned by the worker goroutine.
	containers map[string]*containerState
	netns      string
	podIP      string
	startTime  *metav1.Time
	lastStatus *corev1.PodStatus
	volumesOK  bool
}

func newPodWorker(a *Agent, p *corev1.Pod) *podWorker {
	return &podWorker{a: a, pod: p, knownUID: string(p.UID), wake: make(chan struct{}, 1), quit: make(chan struct{}), containers: map[string]*containerState{}}
}

func (w *podWorker) update(p *corev1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p
	w.gen++
	w.mu.Unlock()
	if old != nil && p != nil && old != p && onlyStatusChanged(old, p) {
		// Most such updates are the echo of the worker's own status
		// write. Syncing on them at once would end every state the
		// status shows until the next sync: a failed pull's ErrImagePull
		// would turn into ImagePullBackOff within milliseconds, so users
		// would never see it. The resync and the containers' own
		// wake-ups drive the worker instead, as the kubelet ignores
		// status-only pod updates.
		return
	}
	w.poke()
}

// onlyStatusChanged reports whether b differs from a only in its status
// and in metadata the server maintains on every write.
func onlyStatusChanged(a, b *corev1.Pod) bool {
	if !equality.Semantic.DeepEqual(a.Spec, b.Spec) {
		return false
	}
	am, bm := a.ObjectMeta, b.ObjectMeta
	am.ResourceVersion, bm.ResourceVersion = "", ""
	am.ManagedFields, bm.ManagedFields = nil, nil
	return equality.Semantic.DeepEqual(am, bm)
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) stop() { w.once.Do(func() { close(w.quit) }) }

func (w *podWorker) current() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) log() *slog.Logger {
	p := w.current()
	if p == nil {
		return w.a.log.With("pod-uid", w.knownUID)
	}
	return w.a.log.With("pod", p.Namespace+"/"+p.Name)
}

// run syncs on every wake-up until the pod is finished with.
func (w *podWorker) run(ctx context.Context) {
	defer w.stopProbes()
	first := true
	for {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-w.quit:
				return
			case <-w.wake:
			}
		}
		first = false
		done, err := w.sync(ctx)
		if err != nil && ctx.Err() == nil {
			w.log().Warn("pod sync failed", "err", err)
		}
		if done {
			return
		}
	}
}

// sync moves the pod one step towards its desired state; done is true
// when the pod is gone and everything of it removed.
func (w *podWorker) sync(ctx context.Context) (bool, error) {
	pod := w.current()
	if pod == nil {
		// Deleted from the API (force delete, or gone while we were away).
		return true, w.killPod(ctx, nil, 0)
	}
	if w.containers == nil || len(w.containers) == 0 {
		w.adopt(ctx, pod)
	}
	if pod.DeletionTimestamp != nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		if err := w.killPod(ctx, pod, time.Duration(grace)*time.Second); err != nil {
			return false, err
		}
		// Containers are stopped: let the API forget the pod.
		zero := int64(0)
		uid := pod.UID
		err := w.a.pods.Namespace(pod.Namespace).Delete(ctx, pod.Name, &metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return false, fmt.Errorf("delete the stopped pod: %w", err)
		}
		return true, nil
	}
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if !terminal {
		if err := w.ensureSandbox(ctx, pod); err != nil {
			w.a.events.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "", "Failed to create pod sandbox: %v", err)
			w.postStatus(ctx, pod)
			return false, err
		}
		if !w.volumesOK {
			if err := w.a.setupVolumes(ctx, pod); err != nil {
				w.a.events.event(pod, corev1.EventTypeWarning, "FailedMount", "", "%v", err)
				w.postStatus(ctx, pod)
				return false, err
			}
			w.volumesOK = true
		}
		w.syncContainers(ctx, pod)
	} else {
		w.stopAll(ctx, pod, 0)
	}
	w.postStatus(ctx, pod)
	return false, nil
}

// adopt finds containers of this pod started before an agent restart.
func (w *podWorker) adopt(ctx context.Context, pod *corev1.Pod) {
	cs, err := w.a.cfg.Runtime.List(ctx)
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Labels[labelPodUID] != string(pod.UID) {
			continue
		}
		name := c.Labels[labelContainer]
		attempt, _ := strconv.Atoi(c.Labels[labelAttempt])
		st := w.state(pod, name)
		if st == nil {
			continue
		}
		if st.id != "" && attempt < st.attempt {
			// An older attempt: only its termination matters.
			continue
		}
		st.id, st.attempt, st.status, st.startedAt = c.ID, attempt, c, c.StartedAt
	}
	// Restart counts and last terminations as the API last knew them.
	for _, cst := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		st := w.state(pod, cst.Name)
		if st == nil {
			continue
		}
		if int(cst.RestartCount) > st.attempt {
			st.attempt = int(cst.RestartCount)
		}
		if cst.LastTerminationState.Terminated != nil {
			st.lastTerminated = cst.LastTerminationState.Terminated.DeepCopy()
		}
	}
	if pod.Status.StartTime != nil {
		t := *pod.Status.StartTime
		w.startTime = &t
	}
}

// state returns (creating) the remembered state of a container of pod;
// nil when the pod has no such container.
func (w *podWorker) state(pod *corev1.Pod, name string) *containerState {
	if st, ok := w.containers[name]; ok {
		return st
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			st := &containerState{name: name, init: true}
			w.containers[name] = st
			return st
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			st := &containerState{name: name}
			w.containers[name] = st
			return st
		}
	}
	return nil
}

func (w *podWorker) ensureSandbox(ctx context.Context, pod *corev1.Pod) error {
	if w.startTime == nil {
		t := metav1.NewTime(w.a.cfg.Now())
		w.startTime = &t
	}
	if pod.Spec.HostNetwork {
		w.podIP = w.a.cfg.Address
		return nil
	}
	if w.netns != "" {
		return nil
	}
	w.a.mu.Lock()
	nw := w.a.net
	w.a.mu.Unlock()
	var ports []PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				proto := "tcp"
				if p.Protocol == corev1.ProtocolUDP {
					proto = "udp"
				}
				ports = append(ports, PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
			}
		}
	}
	netns, ip, err := nw.Setup(ctx, string(pod.UID), ports)
	if err != nil {
		return err
	}
	w.netns, w.podIP = netns, ipString(ip)
	return nil
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// syncContainers runs init containers in order, then keeps every app
// container running as the restart policy says.
func (w *podWorker) syncContainers(ctx context.Context, pod *corev1.Pod) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := w.state(pod, c.Name)
		w.observe(ctx, st)
		if st.status != nil && st.status.State == runtime.StateExited && st.status.ExitCode == 0 {
			continue // done
		}
		if st.status != nil && st.status.State == runtime.StateRunning {
			return // wait for it
		}
		if st.status != nil && st.status.State == runtime.StateExited && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return // the pod failed
		}
		w.startIfDue(ctx, pod, c, st)
		return
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st := w.state(pod, c.Name)
		w.observe(ctx, st)
		if st.status != nil && st.status.State == runtime.StateRunning {
			if st.probes != nil && st.probes.livenessFailed() {
				w.a.events.event(pod, corev1.EventTypeNormal, "Killing", fieldPath(c), "Container %s failed liveness probe, will be restarted", c.Name)
				w.stopContainer(ctx, pod, st, gracePeriod(pod))
				w.observe(ctx, st)
			} else {
				continue
			}
		}
		if st.status != nil && st.status.State == runtime.StateExited {
			if !shouldRestart(pod.Spec.RestartPolicy, st.status.ExitCode) {
				continue
			}
		}
		w.startIfDue(ctx, pod, c, st)
	}
}

func shouldRestart(policy corev1.RestartPolicy, code int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return corev1.DefaultTerminationGracePeriodSeconds * time.Second
}

func fieldPath(c *corev1.Container) string { return "spec.containers{" + c.Name + "}" }

// observe refreshes a container's runtime status and, when it has just
// exited, records the termination and arms the restart back-off.
func (w *podWorker) observe(ctx context.Context, st *containerState) {
	if st.id == "" {
		return
	}
	s, err := w.a.cfg.Runtime.Status(ctx, st.id)
	if errors.Is(err, runtime.ErrNotFound) {
		st.id, st.status = "", nil
		return
	}
	if err != nil {
		return
	}
	was := st.status
	st.status = s
	if s.State == runtime.StateExited && (was == nil || was.State != runtime.StateExited) {
		w.stopProbesOf(st)
		// As the kubelet: the first exit restarts at once; the next waits
		// the initial back-off, each later one twice the last, up to the
		// cap; a run longer than backoffReset starts over.
		if s.FinishedAt.Sub(s.StartedAt) > backoffReset {
			st.nextBackoff = 0
		}
		st.backoff = st.nextBackoff
		st.backoffUntil = s.FinishedAt.Add(st.backoff)
		if st.nextBackoff == 0 {
			st.nextBackoff = w.a.cfg.BackoffInitial
		} else {
			st.nextBackoff = min(st.nextBackoff*2, w.a.cfg.BackoffMax)
		}
	}
}

// startIfDue starts a new attempt of c unless its back-off is running.
func (w *podWorker) startIfDue(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *containerState) {
	now := w.a.cfg.Now()
	if st.id != "" && now.Before(st.backoffUntil) {
		if st.waitingReason != "CrashLoopBackOff" {
			w.a.events.event(pod, corev1.EventTypeWarning, "BackOff", fieldPath(c), "Back-off restarting failed container %s in pod %s", c.Name, pod.Name)
		}
		st.waitingReason = "CrashLoopBackOff"
		st.waitingMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", st.backoff.Round(time.Second), c.Name, pod.Name)
		return
	}
	if (st.waitingReason == "ErrImagePull" || st.waitingReason == "ImagePullBackOff") && now.Before(st.backoffUntil) {
		if st.waitingReason != "ImagePullBackOff" {
			w.a.events.event(pod, corev1.EventTypeNormal, "BackOff", fieldPath(c), "Back-off pulling image %q", c.Image)
		}
		st.waitingReason = "ImagePullBackOff"
		st.waitingMessage = fmt.Sprintf("Back-off pulling image %q", c.Image)
		return
	}
	if err := w.startContainer(ctx, pod, c, st); err != nil {
		w.log().Warn("starting a container failed", "container", c.Name, "err", err)
	}
}

// startContainer pulls the image, prepares the root filesystem and starts
// the next attempt of c.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *containerState) error {
	a := w.a
	fp := fieldPath(c)
	if st.id == "" || st.status == nil {
		a.events.event(pod, corev1.EventTypeNormal, "Pulling", fp, "Pulling image %q", c.Image)
	}
	secrets := w.pullSecrets(ctx, pod)
	img, err := a.cfg.Images.Ensure(ctx, c.Image, c.ImagePullPolicy, secrets)
	if err != nil {
		reason := "ErrImagePull"
		if errors.Is(err, ErrImageNeverPull) {
			reason = "ErrImageNeverPull"
		}
		st.waitingReason, st.waitingMessage = reason, err.Error()
		st.backoff = min(max(st.backoff*2, a.cfg.BackoffInitial), a.cfg.BackoffMax)
		st.backoffUntil = a.cfg.Now().Add(st.backoff)
		a.events.event(pod, corev1.EventTypeWarning, "Failed", fp, "Failed to pull image %q: %v", c.Image, err)
		return err
	}
	if st.id == "" || st.status == nil {
		a.events.event(pod, corev1.EventTypeNormal, "Pulled", fp, "Container image %q is present", c.Image)
	}
	next := st.attempt
	if st.id != "" {
		// Restart: the previous attempt's termination becomes lastState;
		// its container is removed (its logs stay for --previous).
		if st.status != nil && st.status.State == runtime.StateExited {
			st.lastTerminated = terminated(st.status)
		}
		if err := a.cfg.Runtime.Remove(ctx, st.id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return fmt.Errorf("remove the previous attempt: %w", err)
		}
		a.cfg.Images.ReleaseRootFS(st.id)
		next = st.attempt + 1
	}
	id := containerID(pod.UID, c.Name, next)
	rootfs, err := a.cfg.Images.PrepareRootFS(ctx, c.Image, id)
	if err != nil {
		st.waitingReason, st.waitingMessage = "CreateContainerError", err.Error()
		return err
	}
	spec, err := w.a.containerSpec(ctx, pod, c, img, id, rootfs, w.netns, w.podIP, next)
	if err != nil {
		a.cfg.Images.ReleaseRootFS(id)
		st.waitingReason, st.waitingMessage = "CreateContainerConfigError", err.Error()
		a.events.event(pod, corev1.EventTypeWarning, "Failed", fp, "Error: %v", err)
		return err
	}
	a.events.event(pod, corev1.EventTypeNormal, "Created", fp, "Created container %s", c.Name)
	if err := a.cfg.Runtime.Start(ctx, spec); err != nil {
		a.cfg.Runtime.Remove(ctx, id)
		a.cfg.Images.ReleaseRootFS(id)
		st.waitingReason, st.waitingMessage = "RunContainerError", err.Error()
		a.events.event(pod, corev1.EventTypeWarning, "Failed", fp, "Error: %v", err)
		return err
	}
	st.id, st.attempt, st.status = id, next, nil
	st.waitingReason, st.waitingMessage = "", ""
	st.startedAt = a.cfg.Now()
	w.observe(ctx, st)
	a.events.event(pod, corev1.EventTypeNormal, "Started", fp, "Started container %s", c.Name)
	if !st.init {
		w.startProbes(pod, c, st)
	}
	return nil
}

func terminated(s *runtime.Status) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: int32(s.ExitCode), Reason: s.Reason, Message: s.Message,
		StartedAt: metav1.NewTime(s.StartedAt), FinishedAt: metav1.NewTime(s.FinishedAt), ContainerID: "drover://" + s.ID}
}

// pullSecrets reads the pod's imagePullSecrets (dockerconfigjson data).
func (w *podWorker) pullSecrets(ctx context.Context, pod *corev1.Pod) [][]byte {
	var out [][]byte
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := client.GetTyped[corev1.Secret](ctx, w.a.cfg.Client.Resource(client.Secrets).Namespace(pod.Namespace), ref.Name)
		if err != nil {
			continue
		}
		if b := s.Data[corev1.DockerConfigJsonKey]; len(b) > 0 {
			out = append(out, b)
		} else if b := s.Data[corev1.DockerConfigKey]; len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

func (w *podWorker) stopContainer(ctx context.Context, pod *corev1.Pod, st *containerState, grace time.Duration) {
	if st.id == "" {
		return
	}
	w.stopProbesOf(st)
	if err := w.a.cfg.Runtime.Stop(ctx, st.id, grace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		w.log().Warn("stopping a container failed", "container", st.name, "err", err)
	}
}

// stopAll stops every container of the pod (in parallel, each with the
// grace period).
func (w *podWorker) stopAll(ctx context.Context, pod *corev1.Pod, grace time.Duration) {
	var wg sync.WaitGroup
	for _, st := range w.containers {
		w.observe(ctx, st)
		if st.status == nil || st.status.State != runtime.StateRunning {
			continue
		}
		if pod != nil {
			w.a.events.event(pod, corev1.EventTypeNormal, "Killing", "spec.containers{"+st.name+"}", "Stopping container %s", st.name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.stopContainer(ctx, pod, st, grace)
		}()
	}
	wg.Wait()
	for _, st := range w.containers {
		w.observe(ctx, st)
	}
}

// killPod stops and removes everything of the pod: containers, root
// filesystems, the sandbox, volumes.
func (w *podWorker) killPod(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	if pod == nil {
		// Gone from the API: find our containers by label.
		w.adoptAll(ctx)
	}
	w.stopAll(ctx, pod, grace)
	var errs []error
	for name, st := range w.containers {
		if st.id == "" {
			continue
		}
		if err := w.a.cfg.Runtime.Remove(ctx, st.id); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", name, err))
			continue
		}
		w.a.cfg.Images.ReleaseRootFS(st.id)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	uid := w.uid()
	w.a.mu.Lock()
	nw := w.a.net
	w.a.mu.Unlock()
	if nw != nil && uid != "" {
		if err := nw.Teardown(ctx, uid); err != nil {
			return fmt.Errorf("tear down the pod network: %w", err)
		}
	}
	w.netns = ""
	if uid != "" {
		w.a.removePodDir(uid)
	}
	return nil
}

// uid is the pod's UID, also after it was deleted from the API.
func (w *podWorker) uid() string {
	for _, st := range w.containers {
		if st.id != "" {
			if uid, _, _, ok := parseContainerID(st.id); ok {
				return uid
			}
		}
	}
	if p := w.current(); p != nil {
		return string(p.UID)
	}
	return w.knownUID
}

// adoptAll loads every container of the pod (by UID) into the worker.
func (w *podWorker) adoptAll(ctx context.Context) {
	cs, err := w.a.cfg.Runtime.List(ctx)
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Labels[labelPodUID] != w.knownUID {
			continue
		}
		name := c.Labels[labelContainer]
		st, ok := w.containers[name]
		if !ok {
			st = &containerState{name: name}
			w.containers[name] = st
		}
		if st.id == "" || st.id == c.ID {
			st.id, st.status = c.ID, c
		} else {
			// Another attempt of the same container: remove it right away.
			w.a.cfg.Runtime.Stop(ctx, c.ID, 0)
			w.a.cfg.Runtime.Remove(ctx, c.ID)
			w.a.cfg.Images.ReleaseRootFS(c.ID)
		}
	}
}

// logDir is where a pod's container logs live.
func (a *Agent) logDir(uid string) string {
	return filepath.Join(a.cfg.DataDir, "pods", uid, "logs")
}
