package main

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// podSample is one pod's timeline. Times are this machine's clock: the
// client's, the agent's and the shims' alike.
type podSample struct {
	Name  string `json:"name"`
	UID   string `json:"uid"`
	Kind  string `json:"kind"` // single, burst, warmup
	Rep   int    `json:"rep"`
	Burst int    `json:"burst,omitempty"`

	Create   time.Time `json:"create"`             // just before the POST
	APIDone  time.Time `json:"apiDone,omitzero"`   // POST answered
	Bound    time.Time `json:"bound,omitzero"`     // spec.nodeName seen on the watch
	Running  time.Time `json:"running,omitzero"`   // phase Running, container running, seen on the watch
	Deleted  time.Time `json:"deleted,omitzero"`   // DELETE sent
	Gone     time.Time `json:"gone,omitzero"`      // DELETED seen on the watch
	Cleaned  time.Time `json:"cleaned,omitzero"`   // container dir and sandbox state gone on the node
	LoUp     time.Time `json:"loUp,omitzero"`      // CNI loopback ADD done (libcni's cached result, mtime)
	NetUp    time.Time `json:"netUp,omitzero"`     // CNI pod network ADD done (libcni's cached result, mtime)
	Sandbox  time.Time `json:"sandbox,omitzero"`   // network sandbox set up (its state file's mtime)
	Pulling  time.Time `json:"pulling,omitzero"`   // event times (from the agent's event names)
	Pulled   time.Time `json:"pulled,omitzero"`    //
	Created  time.Time `json:"created,omitzero"`   //
	StartEv  time.Time `json:"startedEv,omitzero"` //
	RTStart  time.Time `json:"rtStart,omitzero"`   // runtime Start called (spec.json createdAt)
	ProcUp   time.Time `json:"procUp,omitzero"`    // container process started (shim's status.json startedAt)
	Restarts int32     `json:"restarts,omitempty"`
	// What the API says, in whole seconds (metav1.Time).
	APIScheduled string `json:"apiPodScheduled,omitempty"`
	APIStartTime string `json:"apiStartTime,omitempty"`
	APIStartedAt string `json:"apiContainerStartedAt,omitempty"`
	Err          string `json:"error,omitempty"`

	running chan struct{}
	gone    chan struct{}
	runOnce sync.Once
	goneOne sync.Once
}

// tracker follows every pod of the namespace on one watch and timestamps
// what the benchmark waits for.
type tracker struct {
	pods client.ResourceClient
	mu   sync.Mutex
	by   map[string]*podSample
	rv   string
}

func newTracker(pods client.ResourceClient) *tracker {
	return &tracker{pods: pods, by: map[string]*podSample{}}
}

func (t *tracker) add(s *podSample) {
	s.running = make(chan struct{})
	s.gone = make(chan struct{})
	t.mu.Lock()
	t.by[s.Name] = s
	t.mu.Unlock()
}

// setUID records the UID the create returned (the watch may have been
// first).
func (t *tracker) setUID(s *podSample, uid string) {
	t.mu.Lock()
	if s.UID == "" {
		s.UID = uid
	}
	t.mu.Unlock()
}

func (t *tracker) forget(name string) {
	t.mu.Lock()
	delete(t.by, name)
	t.mu.Unlock()
}

func (t *tracker) start(ctx context.Context) error {
	_, rv, err := client.ListTyped[corev1.Pod](ctx, t.pods, metav1.ListOptions{})
	if err != nil {
		return err
	}
	t.rv = rv
	go t.loop(ctx)
	return nil
}

func (t *tracker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := t.pods.Watch(ctx, metav1.ListOptions{ResourceVersion: t.rv})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.Events() {
			now := time.Now()
			switch ev.Type {
			case "ADDED", "MODIFIED", "DELETED":
				p, err := client.Typed[corev1.Pod](ev.Object)
				if err != nil {
					continue
				}
				t.rv = p.ResourceVersion
				t.observe(string(ev.Type), p, now)
			case "BOOKMARK":
				if ev.Object != nil {
					t.rv = ev.Object.GetResourceVersion()
				}
			case "ERROR":
				if ev.Err != nil && client.IsGone(ev.Err) {
					pods, rv, err := client.ListTyped[corev1.Pod](ctx, t.pods, metav1.ListOptions{})
					if err == nil {
						for _, p := range pods {
							t.observe("MODIFIED", p, time.Now())
						}
						t.rv = rv
					}
				}
			}
		}
		w.Stop()
	}
}

func (t *tracker) observe(typ string, p *corev1.Pod, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.by[p.Name]
	if s == nil {
		return
	}
	if s.UID == "" {
		s.UID = string(p.UID)
	} else if s.UID != string(p.UID) {
		return
	}
	if typ == "DELETED" {
		s.goneOne.Do(func() { s.Gone = now; close(s.gone) })
		return
	}
	if s.Bound.IsZero() && p.Spec.NodeName != "" {
		s.Bound = now
	}
	if s.Running.IsZero() && isRunning(p) {
		s.Running = now
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				s.APIScheduled = c.LastTransitionTime.UTC().Format(time.RFC3339Nano)
			}
		}
		if p.Status.StartTime != nil {
			s.APIStartTime = p.Status.StartTime.UTC().Format(time.RFC3339Nano)
		}
		if cs := p.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
			s.APIStartedAt = cs[0].State.Running.StartedAt.UTC().Format(time.RFC3339Nano)
			s.Restarts = cs[0].RestartCount
		}
		s.runOnce.Do(func() { close(s.running) })
	}
}

func isRunning(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}
