package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
)

// Labels the agent puts on its containers, to find them after a restart.
const (
	labelPodUID       = "drover.io/pod-uid"
	labelPodNamespace = "drover.io/pod-namespace"
	labelPodName      = "drover.io/pod-name"
	labelContainer    = "drover.io/container"
	labelAttempt      = "drover.io/attempt"
)

// watchPods list-watches the pods bound to this node and keeps one worker
// per pod. After each list it removes what belongs to pods that are gone.
func (a *Agent) watchPods(ctx context.Context) error {
	opts := metav1.ListOptions{FieldSelector: "spec.nodeName=" + a.cfg.NodeName}
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	for ctx.Err() == nil {
		pods, rv, err := client.ListTyped[corev1.Pod](ctx, a.pods, opts)
		if err != nil {
			a.log.Warn("listing this node's pods failed; retrying", "err", err)
			if !pause(ctx, time.Second) {
				break
			}
			continue
		}
		live := map[types.UID]bool{}
		for _, p := range pods {
			live[p.UID] = true
			a.podChanged(ctx, p)
		}
		a.forgetMissing(live)
		a.cleanupOrphans(ctx, live)

		wopts := opts
		wopts.ResourceVersion = rv
		wopts.AllowWatchBookmarks = true
		w, err := a.pods.Watch(ctx, wopts)
		if err != nil {
			a.log.Warn("watching this node's pods failed; relisting", "err", err)
			if !pause(ctx, time.Second) {
				break
			}
			continue
		}
	events:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return ctx.Err()
			case <-resync.C:
				a.pokeAll()
			case ev, ok := <-w.Events():
				if !ok {
					break events
				}
				switch ev.Type {
				case "ADDED", "MODIFIED":
					if p, err := client.Typed[corev1.Pod](ev.Object); err == nil {
						a.podChanged(ctx, p)
					}
				case "DELETED":
					if p, err := client.Typed[corev1.Pod](ev.Object); err == nil {
						a.podGone(p.UID)
					}
				}
			}
		}
		if err := w.Err(); err != nil && ctx.Err() == nil {
			a.log.Debug("pod watch ended; relisting", "err", err)
		}
	}
	return ctx.Err()
}

// podChanged hands the newest version of a pod to its worker, starting
// one for a new pod.
func (a *Agent) podChanged(ctx context.Context, p *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[string(p.UID)]
	if !ok {
		w = newPodWorker(a, p)
		a.workers[string(p.UID)] = w
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run(ctx)
			a.mu.Lock()
			if a.workers[string(p.UID)] == w {
				delete(a.workers, string(p.UID))
			}
			a.mu.Unlock()
		}()
	}
	w.update(p)
}

// podGone tells a pod's worker the pod no longer exists in the API: it
// stops everything at once.
func (a *Agent) podGone(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.workers[string(uid)]; ok {
		w.update(nil)
	}
}

func (a *Agent) forgetMissing(live map[types.UID]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, w := range a.workers {
		if !live[types.UID(uid)] {
			w.update(nil)
		}
	}
}

func (a *Agent) pokeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		w.poke()
	}
}

// cleanupOrphans removes containers, root filesystems, sandboxes and pod
// directories of pods that no longer exist (deleted while the agent was
// down). Pods with a worker clean up after themselves.
func (a *Agent) cleanupOrphans(ctx context.Context, live map[types.UID]bool) {
	a.mu.Lock()
	nw := a.net
	a.mu.Unlock()
	cs, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		a.log.Warn("listing containers for cleanup failed", "err", err)
		return
	}
	known := map[string]bool{}
	for _, c := range cs {
		known[c.ID] = true
		uid := types.UID(c.Labels[labelPodUID])
		if uid == "" || live[uid] {
			continue
		}
		a.log.Info("removing a container of a pod that is gone", "container", c.ID, "pod", c.Labels[labelPodNamespace]+"/"+c.Labels[labelPodName])
		if err := a.cfg.Runtime.Stop(ctx, c.ID, 0); err != nil {
			a.log.Warn("stopping an orphaned container failed", "container", c.ID, "err", err)
			continue
		}
		if err := a.cfg.Runtime.Remove(ctx, c.ID); err != nil {
			a.log.Warn("removing an orphaned container failed", "container", c.ID, "err", err)
		}
		a.cfg.Images.ReleaseRootFS(c.ID)
	}
	if ids, err := a.cfg.Images.ListRootFS(); err == nil {
		for _, id := range ids {
			if uid, _, _, ok := parseContainerID(id); ok && !live[types.UID(uid)] {
				a.cfg.Images.ReleaseRootFS(id)
			}
		}
	}
	if nw != nil {
		if ids, err := nw.List(); err == nil {
			for _, id := range ids {
				if !live[types.UID(id)] {
					a.log.Info("removing the network sandbox of a pod that is gone", "sandbox", id)
					if err := nw.Teardown(ctx, id); err != nil {
						a.log.Warn("tearing down an orphaned sandbox failed", "sandbox", id, "err", err)
					}
				}
			}
		}
	}
	entries, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "pods"))
	for _, e := range entries {
		if !live[types.UID(e.Name())] {
			os.RemoveAll(filepath.Join(a.cfg.DataDir, "pods", e.Name()))
		}
	}
}

// containerID names attempt n of a pod's container: stable, so a restarted
// agent knows what it is looking at.
func containerID(uid types.UID, name string, attempt int) string {
	return string(uid) + "_" + name + "_" + strconv.Itoa(attempt)
}

func parseContainerID(id string) (uid, name string, attempt int, ok bool) {
	// uid has no "_"; names are DNS labels (no "_").
	i := indexByte(id, '_')
	j := lastIndexByte(id, '_')
	if i <= 0 || j <= i {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(id[j+1:])
	if err != nil {
		return "", "", 0, false
	}
	return id[:i], id[i+1 : j], n, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

var errPodGone = errors.New("pod is gone")
