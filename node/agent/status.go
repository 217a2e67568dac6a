package agent

import (
	"context"
	"encoding/json"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/runtime"
)

// containerStatus renders what the worker knows of one container.
func (w *podWorker) containerStatus(c *corev1.Container, st *containerState) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, RestartCount: int32(st.attempt)}
	if st.lastTerminated != nil {
		cs.LastTerminationState.Terminated = st.lastTerminated.DeepCopy()
	}
	s := st.status
	switch {
	case s != nil && s.State == runtime.StateRunning:
		cs.ContainerID = "drover://" + s.ID
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(s.StartedAt)}
		started := true
		ready := true
		if st.probes != nil {
			started = st.probes.started()
			ready = st.probes.ready()
		}
		cs.Started = &started
		cs.Ready = started && ready
	case s != nil && s.State == runtime.StateExited && st.waitingReason == "":
		cs.ContainerID = "drover://" + s.ID
		cs.State.Terminated = terminated(s)
		f := false
		cs.Started = &f
	case st.waitingReason != "":
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: st.waitingReason, Message: st.waitingMessage}
		if s != nil && s.State == runtime.StateExited {
			// Waiting to restart: the last run is the last termination.
			cs.LastTerminationState.Terminated = terminated(s)
		}
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		if st.init {
			cs.State.Waiting.Reason = "PodInitializing"
		}
	}
	return cs
}

// podStatus computes phase, conditions and container statuses.
func (w *podWorker) podStatus(pod *corev1.Pod) corev1.PodStatus {
	st := corev1.PodStatus{
		Phase: corev1.PodPending, HostIP: w.a.cfg.Address, PodIP: w.podIP, StartTime: w.startTime,
		QOSClass: pod.Status.QOSClass, NominatedNodeName: pod.Status.NominatedNodeName,
	}
	if w.a.cfg.Address != "" {
		st.HostIPs = []corev1.HostIP{{IP: w.a.cfg.Address}}
	}
	if w.podIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: w.podIP}}
	}
	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cst := w.containerStatus(c, w.state(pod, c.Name))
		st.InitContainerStatuses = append(st.InitContainerStatuses, cst)
		if cst.State.Terminated == nil || cst.State.Terminated.ExitCode != 0 {
			initDone = false
			if cst.State.Terminated != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				st.Phase = corev1.PodFailed
			}
		}
	}
	running, succeeded, failed, waiting, restarting := 0, 0, 0, 0, 0
	allReady := true
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cst := w.containerStatus(c, w.state(pod, c.Name))
		st.ContainerStatuses = append(st.ContainerStatuses, cst)
		switch {
		case cst.State.Running != nil:
			running++
		case cst.State.Terminated != nil && cst.State.Terminated.ExitCode == 0:
			succeeded++
		case cst.State.Terminated != nil:
			failed++
		case cst.LastTerminationState.Terminated != nil:
			// Waiting to run again (CrashLoopBackOff, a failing pull of
			// a restart): it has run, so the pod is not Pending but
			// Running, as the kubelet reports a crash-looping pod.
			restarting++
		default:
			waiting++
		}
		if !cst.Ready {
			allReady = false
		}
	}
	n := len(pod.Spec.Containers)
	if st.Phase != corev1.PodFailed && initDone {
		switch {
		case waiting > 0 && running == 0 && restarting == 0 && succeeded+failed == 0:
			st.Phase = corev1.PodPending
		case running > 0 || waiting > 0 || restarting > 0:
			st.Phase = corev1.PodRunning
		case succeeded == n:
			st.Phase = corev1.PodSucceeded
		case failed > 0 && pod.Spec.RestartPolicy != corev1.RestartPolicyAlways:
			st.Phase = corev1.PodFailed
		default:
			st.Phase = corev1.PodRunning
		}
	}
	// Restart policy Always never finishes; terminated containers there are
	// restarting.
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways && (st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed) {
		st.Phase = corev1.PodRunning
	}
	now := metav1.NewTime(w.a.cfg.Now())
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason = corev1.ConditionTrue, ""
		}
		// Keep the transition time while the status stays the same.
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	ready := allReady && running > 0 && st.Phase == corev1.PodRunning
	notReadyReason := "ContainersNotReady"
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		notReadyReason = "PodCompleted"
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodInitialized, initDone, "ContainersNotInitialized"),
		cond(corev1.ContainersReady, ready, notReadyReason),
		cond(corev1.PodReady, ready, notReadyReason),
		cond(corev1.PodScheduled, true, ""),
	}
	return st
}

// postStatus writes the pod's status when it changed.
func (w *podWorker) postStatus(ctx context.Context, pod *corev1.Pod) {
	st := w.podStatus(pod)
	if w.lastStatus != nil && reflect.DeepEqual(*w.lastStatus, st) {
		return
	}
	if reflect.DeepEqual(stripTimes(pod.Status), stripTimes(st)) {
		w.lastStatus = &st
		return
	}
	// A merge patch of the whole status (with the pod's uid as a
	// precondition: never write onto a recreated pod of the same name).
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.UID}, "status": st})
	if err != nil {
		return
	}
	_, err = client.PatchTyped[corev1.Pod](ctx, w.a.pods.Namespace(pod.Namespace), pod.Name, types.MergePatchType, body, "status")
	if err != nil {
		if ctx.Err() == nil && !client.IsNotFound(err) {
			w.log().Warn("posting pod status failed", "err", err)
		}
		return
	}
	w.lastStatus = &st
}

// stripTimes drops fields that only move with the clock, to compare.
func stripTimes(s corev1.PodStatus) corev1.PodStatus {
	s = *s.DeepCopy()
	for i := range s.Conditions {
		s.Conditions[i].LastTransitionTime = metav1.Time{}
		s.Conditions[i].LastProbeTime = metav1.Time{}
	}
	return s
}
