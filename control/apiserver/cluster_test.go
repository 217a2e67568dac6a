package apiserver

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Three masters, each with its own API server: a write through one is
// seen by a watch on another.
func TestWatchAcrossMasters(t *testing.T) {
	e := newEnv(t, 3, nil)
	const base = "/api/v1/namespaces/default/configmaps"
	w := e.watch(2, base+"?watch=true&resourceVersion=0")
	for i := 0; i < 3; i++ {
		code, b := e.doOn(i, "POST", base, map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("via-%d", i)}})
		if code != 201 {
			t.Fatalf("create via master %d: %d %s", i, code, b)
		}
	}
	for i := 0; i < 3; i++ {
		ev, _ := w.next(t, 5*time.Second)
		if m := objMeta(t, ev.Object); ev.Type != "ADDED" || m.Name != fmt.Sprintf("via-%d", i) {
			t.Fatalf("event %d: %s %s", i, ev.Type, m.Name)
		}
	}
}

// A client watching through one master re-attaches to another when that
// master dies, from the last resourceVersion it saw, and misses or repeats
// nothing.
func TestWatchSurvivesMasterLoss(t *testing.T) {
	e := newEnv(t, 3, nil)
	const base = "/api/v1/namespaces/default/configmaps"
	e.must(201, "POST", base, map[string]any{"metadata": map[string]any{"name": "counter"}})
	var start corev1.ConfigMap
	decodeInto(t, e.must(200, "GET", base+"/counter", nil), &start)

	// Writers go through masters 0 and 2; the watch starts on master 1,
	// which is killed halfway.
	var mu sync.Mutex
	acked := map[string]bool{} // resourceVersions of acknowledged writes
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for wi, m := range []int{0, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				code, b, _ := e.raw(m, "PATCH", base+"/counter", req{token: e.token, ct: "application/merge-patch+json",
					body: []byte(fmt.Sprintf(`{"data":{"w%d":"%d"}}`, wi, n))})
				mu.Lock()
				if code == 200 {
					acked[objMeta(t, b).ResourceVersion] = true
				}
				mu.Unlock()
				if code != 200 {
					time.Sleep(20 * time.Millisecond) // a leader change is under way; do not spin
				}
			}
		}()
	}
	seen := []string{}
	seenSet := map[string]bool{}
	last := start.ResourceVersion
	collect := func(ws *watchStream, until func() bool) bool {
		for !until() {
			select {
			case ev, ok := <-ws.events:
				if !ok {
					return false
				}
				if ev.Type == "ERROR" {
					return false
				}
				rv := objMeta(t, ev.Object).ResourceVersion
				if seenSet[rv] {
					t.Fatalf("event at resourceVersion %s delivered twice", rv)
				}
				a, _ := strconv.ParseInt(rv, 10, 64)
				b, _ := strconv.ParseInt(last, 10, 64)
				if a <= b {
					t.Fatalf("resourceVersion %s after %s", rv, last)
				}
				seenSet[rv] = true
				seen = append(seen, rv)
				last = rv
			case <-time.After(10 * time.Second):
				t.Fatalf("watch stalled at %s", last)
			}
		}
		return true
	}
	w1 := e.watch(1, base+"?watch=true&resourceVersion="+last)
	collect(w1, func() bool { return len(seen) >= 30 })
	e.https[1].CloseClientConnections()
	e.c.Kill(1)
	e.https[1].Close()
	w1.cancel()
	// Re-attach to master 2 from the last resourceVersion seen.
	w2 := e.watch(2, base+"?watch=true&resourceVersion="+last)
	collect(w2, func() bool { return len(seen) >= 80 })
	close(stop)
	wg.Wait()
	// Everything acknowledged up to the last event seen is there.
	lastN, _ := strconv.ParseInt(last, 10, 64)
	e.eventually(10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for rv := range acked {
			n, _ := strconv.ParseInt(rv, 10, 64)
			if n <= lastN && !seenSet[rv] {
				return fmt.Errorf("acknowledged write at %s never seen (last seen %s)", rv, last)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, rv := range seen {
		if !acked[rv] {
			// A write whose answer was lost in the kill may still have
			// committed; anything else is an invented event.
			t.Logf("event at %s was not acknowledged (indeterminate write)", rv)
		}
	}
}

// 50 clients increment one counter by read-modify-write through different
// masters; optimistic concurrency loses no update. Each increment also
// writes a marker of its own, so a write whose answer was lost (a timeout
// while leadership moves under load) is recognised on the next read instead
// of being counted twice or not at all.
func TestNoLostUpdates(t *testing.T) {
	e := newEnv(t, 3, nil)
	const path = "/api/v1/namespaces/default/configmaps/counter"
	e.must(201, "POST", "/api/v1/namespaces/default/configmaps", map[string]any{"metadata": map[string]any{"name": "counter"}, "data": map[string]any{"n": "0"}})
	const clients, each = 50, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts, indeterminate := 0, 0
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := c % 3
			for done := 0; done < each; {
				marker := fmt.Sprintf("c%d-%d", c, done)
				code, b, _ := e.raw(m, "GET", path, req{token: e.token})
				if code != 200 {
					m = (m + 1) % 3 // this master cannot serve now; try another
					continue
				}
				var cm corev1.ConfigMap
				decodeInto(t, b, &cm)
				if cm.Data[marker] != "" {
					done++ // an earlier, unanswered write did apply
					continue
				}
				n, _ := strconv.Atoi(cm.Data["n"])
				cm.Data["n"] = strconv.Itoa(n + 1)
				cm.Data[marker] = "1"
				code, b, _ = e.raw(m, "PUT", path, req{token: e.token, ct: "application/json", body: mustJSON(cm)})
				mu.Lock()
				switch {
				case code == 200:
					done++
				case code == 409:
					conflicts++
				case code == 503 || code == 504:
					indeterminate++
					m = (m + 1) % 3
				default:
					t.Errorf("put: %d %s", code, b)
					mu.Unlock()
					return
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var cm corev1.ConfigMap
	decodeInto(t, e.must(200, "GET", path, nil), &cm)
	if cm.Data["n"] != strconv.Itoa(clients*each) || len(cm.Data) != clients*each+1 {
		t.Fatalf("counter is %s with %d markers after %d increments", cm.Data["n"], len(cm.Data)-1, clients*each)
	}
	t.Logf("%d increments, %d conflicts retried, %d unanswered writes resolved by re-reading", clients*each, conflicts, indeterminate)
}

// Services created at once through three masters never share a cluster IP
// or a node port.
func TestServiceAllocationAcrossMasters(t *testing.T) {
	e := newEnv(t, 3, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ips, ports := map[string]string{}, map[int32]string{}
	for i := 0; i < 45; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%d", i)
			code, b := e.doOn(i%3, "POST", "/api/v1/namespaces/default/services", map[string]any{"metadata": map[string]any{"name": name},
				"spec": map[string]any{"type": "NodePort", "ports": []any{map[string]any{"port": 80}}}})
			if code != 201 {
				t.Errorf("create %s: %d %s", name, code, b)
				return
			}
			var s corev1.Service
			decodeInto(t, b, &s)
			mu.Lock()
			defer mu.Unlock()
			if other, dup := ips[s.Spec.ClusterIP]; dup {
				t.Errorf("%s and %s both got %s", other, name, s.Spec.ClusterIP)
			}
			ips[s.Spec.ClusterIP] = name
			if other, dup := ports[s.Spec.Ports[0].NodePort]; dup {
				t.Errorf("%s and %s both got node port %d", other, name, s.Spec.Ports[0].NodePort)
			}
			ports[s.Spec.Ports[0].NodePort] = name
		}()
	}
	wg.Wait()
}

// Nodes registering at once through three masters all get distinct pod
// subnets.
func TestNodeSubnetsAcrossMasters(t *testing.T) {
	e := newEnv(t, 3, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]string{}
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("n%d", i)
			code, b := e.doOn(i%3, "POST", "/api/v1/nodes", map[string]any{"metadata": map[string]any{"name": name}})
			if code != 201 {
				t.Errorf("register %s: %d %s", name, code, b)
				return
			}
			var n corev1.Node
			decodeInto(t, b, &n)
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[n.Spec.PodCIDR]; dup || n.Spec.PodCIDR == "" {
				t.Errorf("%s got %q (also %s)", name, n.Spec.PodCIDR, other)
			}
			seen[n.Spec.PodCIDR] = name
		}()
	}
	wg.Wait()
}
