package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
)

func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "podbench"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: containerNm, Image: imageRef, ImagePullPolicy: corev1.PullNever, Command: podCommand}},
		},
	}
}

func (b *bench) pods() client.ResourceClient { return b.c.Resource(client.Pods).Namespace(namespace) }

// create POSTs the sample's pod.
func (b *bench) create(ctx context.Context, s *podSample) error {
	s.Create = time.Now()
	p, err := client.CreateTyped(ctx, b.pods(), newPod(s.Name))
	s.APIDone = time.Now()
	if err != nil {
		return err
	}
	b.tr.setUID(s, string(p.UID))
	return nil
}

// waitRunning waits for the watch to see the pod Running.
func (b *bench) waitRunning(s *podSample, deadline time.Time) bool {
	select {
	case <-s.running:
		return true
	case <-time.After(time.Until(deadline)):
		return false
	}
}

// singlePod creates one pod, waits for Running, reads the node's records
// of it, deletes it and waits until the node has torn it down.
func (b *bench) singlePod(rep int, kind string, i int) *podSample {
	s := &podSample{Name: fmt.Sprintf("%s%d-%02d", kind[:1], rep, i), Kind: kind, Rep: rep}
	b.tr.add(s)
	defer b.tr.forget(s.Name)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.podTimeout+30*time.Second)
	defer cancel()
	if err := b.create(ctx, s); err != nil {
		s.Err = "create: " + err.Error()
		return s
	}
	if !b.waitRunning(s, s.Create.Add(b.cfg.podTimeout)) {
		s.Err = fmt.Sprintf("not Running after %s: %s", b.cfg.podTimeout, b.podDiag(ctx, s))
	} else {
		b.readNodeRecords(s)
	}
	b.deleteAndWait([]*podSample{s})
	return s
}

// burstPods creates n pods at once, waits for all to be Running, takes
// the memory snapshot and the CPU used, then deletes them all.
func (b *bench) burstPods(rep, k, n int) ([]*podSample, float64, *cpuPerPod, *memSnap) {
	samples := make([]*podSample, n)
	for i := range samples {
		samples[i] = &podSample{Name: fmt.Sprintf("b%d-%d-%02d", rep, k, i+1), Kind: "burst", Rep: rep, Burst: k}
		b.tr.add(samples[i])
	}
	defer func() {
		for _, s := range samples {
			b.tr.forget(s.Name)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*b.cfg.podTimeout+60*time.Second)
	defer cancel()
	c0 := b.nodeCPU()
	go0 := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go0
			if err := b.create(ctx, s); err != nil {
				s.Err = "create: " + err.Error()
			}
		}()
	}
	start := time.Now()
	close(go0)
	wg.Wait()
	deadline := start.Add(2 * b.cfg.podTimeout)
	var last time.Time
	ok := 0
	for _, s := range samples {
		if s.Err != "" {
			continue
		}
		if !b.waitRunning(s, deadline) {
			s.Err = fmt.Sprintf("not Running after %s: %s", time.Since(start).Round(time.Second), b.podDiag(ctx, s))
			continue
		}
		ok++
		if s.Running.After(last) {
			last = s.Running
		}
	}
	c1 := b.nodeCPU()
	var cpu *cpuPerPod
	if ok > 0 {
		cpu = &cpuPerPod{Pods: ok, NodeMs: ms(c1.node()-c0.node()) / float64(ok),
			AgentMs:     ms(c1.agent-c0.agent) / float64(ok),
			AgentOwnMs:  ms(c1.agentOwn-c0.agentOwn) / float64(ok),
			ShimsInitMs: ms(c1.shims+c1.ctrs-c0.shims-c0.ctrs) / float64(ok),
			MastersMs:   ms(c1.masters-c0.masters) / float64(ok)}
	}
	mem := b.memSnapshot(ok)
	for _, s := range samples {
		if s.Err == "" {
			b.readNodeRecords(s)
		}
	}
	b.deleteAndWait(samples)
	all := -1.0
	if ok == n {
		all = float64(last.Sub(start).Microseconds()) / 1e3
	}
	return samples, all, cpu, mem
}

// deleteAndWait deletes the pods (grace 0, as the node has nothing to
// drain) and waits until the node has removed each one's container,
// network sandbox and pod directory.
func (b *bench) deleteAndWait(samples []*podSample) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	zero := int64(0)
	var wg sync.WaitGroup
	for _, s := range samples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := &metav1.DeleteOptions{GracePeriodSeconds: &zero}
			if s.UID != "" {
				uid := types.UID(s.UID)
				opts.Preconditions = &metav1.Preconditions{UID: &uid}
			}
			s.Deleted = time.Now()
			if err := b.pods().Delete(ctx, s.Name, opts); err != nil && !client.IsNotFound(err) {
				if s.Err == "" {
					s.Err = "delete: " + err.Error()
				}
				return
			}
			select {
			case <-s.gone:
			case <-ctx.Done():
				return
			}
			for ctx.Err() == nil {
				if s.UID == "" || !b.nodeHas(s) {
					s.Cleaned = time.Now()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, s := range samples {
		if s.Cleaned.IsZero() && s.Err == "" {
			s.Err = "not torn down on the node within 2 minutes of the delete"
		}
	}
}

// nodeHas reports whether anything of the pod is left on the node: a
// container directory, the network sandbox's state, the pod directory.
func (b *bench) nodeHas(s *podSample) bool {
	if ents, err := os.ReadDir(containersDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), s.UID+"_") {
				return true
			}
		}
	}
	for _, p := range []string{filepath.Join(b.agentDD, "network", "sandboxes", s.UID+".json"), filepath.Join(b.agentDD, "pods", s.UID)} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

// readNodeRecords reads, while the pod runs, what the node recorded with
// full precision: when the runtime's Start was called (spec.json), when
// the container's process started (the shim's status.json) and when the
// network sandbox was set up (its state file's mtime).
func (b *bench) readNodeRecords(s *podSample) {
	id := fmt.Sprintf("%s_%s_%d", s.UID, containerNm, s.Restarts)
	dir := filepath.Join(containersDir(), id)
	var spec struct {
		CreatedAt time.Time `json:"createdAt"`
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "spec.json")); err == nil && json.Unmarshal(raw, &spec) == nil {
		s.RTStart = spec.CreatedAt
	}
	var st struct {
		StartedAt time.Time `json:"startedAt"`
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "status.json")); err == nil && json.Unmarshal(raw, &st) == nil {
		s.ProcUp = st.StartedAt
	}
	if fi, err := os.Stat(filepath.Join(b.agentDD, "network", "sandboxes", s.UID+".json")); err == nil {
		s.Sandbox = fi.ModTime()
	}
	// libcni caches each ADD's result as results/<network>-<id>-<ifname>.
	results := filepath.Join(b.agentDD, "network", "cni-cache", "results")
	if m, _ := filepath.Glob(filepath.Join(results, "*-"+s.UID+"-lo")); len(m) == 1 {
		if fi, err := os.Stat(m[0]); err == nil {
			s.LoUp = fi.ModTime()
		}
	}
	if m, _ := filepath.Glob(filepath.Join(results, "*-"+s.UID+"-eth0")); len(m) == 1 {
		if fi, err := os.Stat(m[0]); err == nil {
			s.NetUp = fi.ModTime()
		}
	}
}

// enrich adds, after the pods are gone, the agent's events (their names
// carry the agent's clock in nanoseconds: <pod>.<hex UnixNano>).
func (b *bench) enrich(samples []*podSample) {
	byUID := map[string]*podSample{}
	for _, s := range samples {
		if s.UID != "" && s.Err == "" {
			byUID[s.UID] = s
		}
	}
	if len(byUID) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _, err := client.ListTyped[corev1.Event](ctx, b.c.Resource(client.Events).Namespace(namespace), metav1.ListOptions{})
		if err == nil {
			for _, ev := range evs {
				s := byUID[string(ev.InvolvedObject.UID)]
				if s == nil {
					continue
				}
				i := strings.LastIndexByte(ev.Name, '.')
				if i < 0 {
					continue
				}
				ns, err := strconv.ParseInt(ev.Name[i+1:], 16, 64)
				if err != nil {
					continue
				}
				t := time.Unix(0, ns)
				switch ev.Reason {
				case "Pulling":
					s.Pulling = t
				case "Pulled":
					s.Pulled = t
				case "Created":
					s.Created = t
				case "Started":
					s.StartEv = t
				}
			}
		}
		missing := 0
		for _, s := range byUID {
			if s.StartEv.IsZero() {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// podDiag says why a pod is not Running: its phase, container states and
// the last events.
func (b *bench) podDiag(ctx context.Context, s *podSample) string {
	p, err := client.GetTyped[corev1.Pod](ctx, b.pods(), s.Name)
	if err != nil {
		return "get: " + err.Error()
	}
	var parts []string
	parts = append(parts, "phase "+string(p.Status.Phase), "node "+p.Spec.NodeName)
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message))
		case c.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated %d %s", c.Name, c.State.Terminated.ExitCode, c.State.Terminated.Reason))
		case c.State.Running != nil:
			parts = append(parts, c.Name+" running")
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			parts = append(parts, fmt.Sprintf("%s=%s %s %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	return strings.Join(parts, "; ")
}
