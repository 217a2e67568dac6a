package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// snap is CPU time (and the clock) at one moment.
type snap struct {
	at      time.Time
	masters []procStat
	self    time.Duration
	busy    time.Duration
}

func (b *bench) snap() snap {
	s := snap{at: time.Now(), self: readProc(os.Getpid()).CPU, busy: machineBusy()}
	for _, pid := range b.cl.pids() {
		s.masters = append(s.masters, readProc(pid))
	}
	return s
}

// cpuBetween fills a row's CPU columns from two snapshots.
func cpuBetween(r *Row, a, z snap, ops int) {
	wall := z.at.Sub(a.at).Seconds()
	var srv time.Duration
	for i := range z.masters {
		if i < len(a.masters) {
			srv += z.masters[i].CPU - a.masters[i].CPU
		}
	}
	self := z.self - a.self
	other := z.busy - a.busy - srv - self
	if other < 0 {
		other = 0
	}
	if wall > 0 {
		r.ServerCores = srv.Seconds() / wall
		r.ClientCores = self.Seconds() / wall
		r.OtherCores = other.Seconds() / wall
	}
	if ops > 0 {
		r.ServerCPUPerOpUs = float64(srv.Microseconds()) / float64(ops)
	}
}

// opResult is what one operation reports besides its latency.
type opResult struct {
	conflicts int
	bytes     int64
	objects   int
}

// opFunc runs operation seq of worker w against master m.
type opFunc func(ctx context.Context, w, seq, m int) (opResult, error)

type rowSpec struct {
	name    string
	op      string // create, get, update, list, watch
	clients int
	objects int // namespace size (lists)
	slo     time.Duration
	minOps  int // at least this many completions in the window (lists)
}

// workerLog is one worker's measured operations.
type workerLog struct {
	lats      []time.Duration
	ends      []time.Time
	byMaster  [][]time.Duration
	errs      map[string]int
	conflicts int
	bytes     int64
	objects   int64
}

// closedLoop runs op from spec.clients workers, each one request at a
// time, for warm-up + duration (longer if minOps completions have not been
// seen). Latency counts successful operations that started after the
// warm-up; throughput counts completions inside the measured window.
func (b *bench) closedLoop(spec rowSpec, op opFunc) *Row {
	fmt.Fprintf(os.Stderr, "apibench: %s, %d client(s)...\n", spec.name, spec.clients)
	b.profileStart(spec)
	start := time.Now()
	warmEnd := start.Add(b.warmup)
	var stop atomic.Bool
	var done atomic.Int64 // successful completions after warmEnd
	logs := make([]*workerLog, spec.clients)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range spec.clients {
		l := &workerLog{errs: map[string]int{}, byMaster: make([][]time.Duration, len(b.cl.masters))}
		logs[w] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !stop.Load(); seq++ {
				octx, ocancel := context.WithTimeout(ctx, b.opTimeout)
				t0 := time.Now()
				m := (w + seq) % len(b.cl.masters) // every worker rotates over the masters
				res, err := op(octx, w, seq, m)
				t1 := time.Now()
				ocancel()
				measured := !t0.Before(warmEnd)
				if err != nil {
					if measured {
						l.errs[errKind(err)]++
						if len(l.errs) == 1 && l.errs[errKind(err)] == 1 {
							b.noteErr(spec.name, err)
						}
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if !t1.Before(warmEnd) {
					done.Add(1)
					l.ends = append(l.ends, t1) // throughput: every completion in the window
				}
				if measured {
					l.lats = append(l.lats, t1.Sub(t0))
					l.byMaster[m] = append(l.byMaster[m], t1.Sub(t0))
					l.conflicts += res.conflicts
					l.bytes += res.bytes
					l.objects += int64(res.objects)
				}
			}
		}()
	}
	time.Sleep(time.Until(warmEnd))
	s0 := b.snap()
	minEnd := warmEnd.Add(b.duration)
	hardEnd := warmEnd.Add(b.duration + b.maxExtra)
	for {
		now := time.Now()
		if !now.Before(hardEnd) || (!now.Before(minEnd) && done.Load() >= int64(spec.minOps)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s1 := b.snap()
	stop.Store(true)
	wg.Wait()
	b.profileStop()

	r := &Row{Name: spec.name, Op: spec.op, Clients: spec.clients, Objects: spec.objects, SLOms: ms(spec.slo), Errors: map[string]int{}}
	var lats []time.Duration
	inWindow := 0
	for _, l := range logs {
		lats = append(lats, l.lats...)
		for _, e := range l.ends {
			if !e.After(s1.at) {
				inWindow++
			}
		}
		for k, v := range l.errs {
			r.Errors[k] += v
			r.ErrorCount += v
		}
		r.Conflicts += l.conflicts
		r.Ops += len(l.lats)
		if len(l.lats) > 0 {
			r.BytesPerOp += float64(l.bytes)
			r.ObjectsPerOp += float64(l.objects)
		}
	}
	if r.Ops > 0 {
		r.BytesPerOp /= float64(r.Ops)
		r.ObjectsPerOp /= float64(r.Ops)
	}
	r.Seconds = s1.at.Sub(s0.at).Seconds()
	r.OpsPerSec = float64(inWindow) / r.Seconds
	fillLatency(r, lats)
	for mi, mm := range b.cl.masters {
		var ml []time.Duration
		for _, l := range logs {
			ml = append(ml, l.byMaster[mi]...)
		}
		if len(ml) == 0 {
			continue
		}
		slices.Sort(ml)
		r.ByMaster = append(r.ByMaster, MasterLat{ID: mm.id, Leader: mm.id == b.leaderID, N: len(ml), P50ms: ms(pct(ml, 0.5)), P99ms: ms(pct(ml, 0.99))})
	}
	cpuBetween(r, s0, s1, inWindow)
	r.verdict()
	fmt.Fprintf(os.Stderr, "apibench:   %s\n", r.short())
	return r
}

func errKind(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return "HTTP " + strconv.Itoa(se.code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// noteErr keeps the first few error messages for the report.
func (b *bench) noteErr(row string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errSamples) < 30 {
		b.errSamples = append(b.errSamples, row+": "+err.Error())
	}
}

// podRef is a pod the generator created and the latest version it has seen.
type podRef struct {
	name string
	mu   sync.Mutex
	pod  *corev1.Pod
}

func (p *podRef) get() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod
}

// offer keeps pod if it is newer than what is held.
func (p *podRef) offer(pod *corev1.Pod) {
	n, _ := strconv.ParseInt(pod.ResourceVersion, 10, 64)
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, _ := strconv.ParseInt(p.pod.ResourceVersion, 10, 64); n > o {
		p.pod = pod
	}
}

// pool is the pods of the create rows, for get and update.
type pool struct {
	mu   sync.Mutex
	pods []*podRef
}

func (p *pool) add(pod *corev1.Pod) {
	p.mu.Lock()
	p.pods = append(p.pods, &podRef{name: pod.Name, pod: pod})
	p.mu.Unlock()
}

func (p *pool) pick(n int) *podRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n <= 0 || n > len(p.pods) {
		n = len(p.pods)
	}
	return p.pods[rand.IntN(n)]
}

const nsCRUD = "bench-crud"

func (b *bench) createRow(clients int) *Row {
	row := len(b.rows)
	return b.closedLoop(rowSpec{name: "create pod", op: "create", clients: clients, slo: time.Second},
		func(ctx context.Context, w, seq, m int) (opResult, error) {
			p, err := b.api.createPod(ctx, m, nsCRUD, fmt.Sprintf("r%d-w%d-%d", row, w, seq))
			if err != nil {
				return opResult{}, err
			}
			b.pool.add(p)
			return opResult{}, nil
		})
}

func (b *bench) getRow(clients int) *Row {
	return b.closedLoop(rowSpec{name: "get pod by name", op: "get", clients: clients, slo: time.Second},
		func(ctx context.Context, w, seq, m int) (opResult, error) {
			ref := b.pool.pick(0)
			code, body, err := b.api.do(ctx, m, "GET", "/api/v1/namespaces/"+nsCRUD+"/pods/"+ref.name, nil, "")
			if err != nil {
				return opResult{}, err
			}
			if code != 200 {
				return opResult{}, httpErr(code, body)
			}
			var om objMeta
			if err := json.Unmarshal(body, &om); err != nil || om.Kind != "Pod" || om.Metadata.Name != ref.name || om.Metadata.Namespace != nsCRUD {
				return opResult{}, fmt.Errorf("GET %s answered another object or garbage (%v)", ref.name, err)
			}
			return opResult{bytes: int64(len(body))}, nil
		})
}

// updateRow PUTs pods with the resourceVersion last seen; on 409 it reads
// the pod again and retries (counted). Latency covers the whole update,
// retries included.
func (b *bench) updateRow(clients int) *Row {
	return b.closedLoop(rowSpec{name: "update pod (PUT, 409 -> GET + retry)", op: "update", clients: clients, slo: time.Second},
		func(ctx context.Context, w, seq, m int) (opResult, error) {
			ref := b.pool.pick(b.updateSet)
			cur := ref.get()
			var res opResult
			for attempt := 0; attempt < 20; attempt++ {
				next := cur.DeepCopy()
				if next.Annotations == nil {
					next.Annotations = map[string]string{}
				}
				gen := fmt.Sprintf("w%d-%d-%d", w, seq, attempt)
				next.Annotations["apibench/generation"] = gen
				body, _ := json.Marshal(next)
				code, rb, err := b.api.do(ctx, m, "PUT", "/api/v1/namespaces/"+nsCRUD+"/pods/"+ref.name, body, "")
				if err != nil {
					return res, err
				}
				switch code {
				case 200:
					var got corev1.Pod
					if err := json.Unmarshal(rb, &got); err != nil {
						return res, fmt.Errorf("decode updated pod: %w", err)
					}
					if got.Annotations["apibench/generation"] != gen || got.ResourceVersion == cur.ResourceVersion {
						return res, fmt.Errorf("PUT %s answered 200 without the change (rv %s -> %s)", ref.name, cur.ResourceVersion, got.ResourceVersion)
					}
					ref.offer(&got)
					return res, nil
				case http.StatusConflict:
					res.conflicts++
					code, gb, err := b.api.do(ctx, m, "GET", "/api/v1/namespaces/"+nsCRUD+"/pods/"+ref.name, nil, "")
					if err != nil {
						return res, err
					}
					if code != 200 {
						return res, httpErr(code, gb)
					}
					var fresh corev1.Pod
					if err := json.Unmarshal(gb, &fresh); err != nil {
						return res, err
					}
					ref.offer(&fresh)
					cur = &fresh
				default:
					return res, httpErr(code, rb)
				}
			}
			return res, errors.New("20 conflicts in a row")
		})
}

// fill creates pods pod-00000.. in ns until it holds n, from 32 workers;
// it returns the rate.
func (b *bench) fill(ns string, n int) (float64, error) {
	fmt.Fprintf(os.Stderr, "apibench: filling %s with %d pods...\n", ns, n)
	if err := b.api.createNamespace(context.Background(), ns); err != nil {
		return 0, err
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				name := fmt.Sprintf("pod-%05d", i)
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), b.opTimeout)
					var p *corev1.Pod
					p, err = b.api.createPod(ctx, w, ns, name)
					cancel()
					var se *statusError
					if err == nil || (errors.As(err, &se) && se.code == http.StatusConflict) {
						err = nil
						if p != nil && b.fillSink != nil {
							b.fillSink(p)
						}
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					failed.Store(fmt.Errorf("create %s/%s: %w", ns, name, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return 0, e.(error)
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// listRow lists a namespace of objects pods as JSON in one response.
func (b *bench) listRow(ns string, objects, clients int) *Row {
	verified := make([]bool, clients)
	return b.closedLoop(rowSpec{name: fmt.Sprintf("list %s pods, JSON, one response", thousands(objects)), op: "list", clients: clients, objects: objects,
		slo: 5 * time.Second, minOps: max(10, 3*clients)},
		func(ctx context.Context, w, seq, m int) (opResult, error) {
			path := "/api/v1/namespaces/" + ns + "/pods"
			if !verified[w] {
				// First list of each worker: decode and check it.
				code, body, err := b.api.do(ctx, m, "GET", path, nil, "")
				if err != nil {
					return opResult{}, err
				}
				if code != 200 {
					return opResult{}, httpErr(code, body)
				}
				var l podListNames
				if err := json.Unmarshal(body, &l); err != nil {
					return opResult{}, fmt.Errorf("decode list: %w", err)
				}
				if err := checkNames(ns, objects, len(l.Items), func(i int) (string, string) {
					return l.Items[i].Metadata.Namespace, l.Items[i].Metadata.Name
				}); err != nil {
					return opResult{}, err
				}
				verified[w] = true
				return opResult{bytes: int64(len(body)), objects: len(l.Items)}, nil
			}
			code, n, err := b.api.discard(ctx, m, "GET", path, "")
			if err != nil {
				return opResult{}, err
			}
			if code != 200 {
				return opResult{}, httpErr(code, nil)
			}
			return opResult{bytes: n, objects: objects}, nil
		})
}

// tableRow lists a namespace the way `kubectl get pods` does: Table
// output, pages of 500 followed by continue tokens. One op is the whole
// listing.
func (b *bench) tableRow(ns string, objects, clients int) *Row {
	verified := make([]bool, clients)
	return b.closedLoop(rowSpec{name: fmt.Sprintf("list %s pods, Table (kubectl get), pages of 500", thousands(objects)), op: "list-table", clients: clients,
		objects: objects, slo: 5 * time.Second, minOps: max(10, 3*clients)},
		func(ctx context.Context, w, seq, m int) (opResult, error) {
			var res opResult
			var names []string
			cont := ""
			for pages := 0; ; pages++ {
				if pages > objects/500+5 {
					return res, errors.New("Table list does not end (continue tokens loop)")
				}
				path := "/api/v1/namespaces/" + ns + "/pods?limit=500"
				if cont != "" {
					path += "&continue=" + cont
				}
				code, body, err := b.api.do(ctx, m, "GET", path, nil, tableAccept)
				if err != nil {
					return res, err
				}
				if code != 200 {
					return res, httpErr(code, body)
				}
				var t tablePage
				if err := json.Unmarshal(body, &t); err != nil {
					return res, fmt.Errorf("decode Table page: %w", err)
				}
				if t.Kind != "Table" || len(t.ColumnDefinitions) == 0 {
					return res, fmt.Errorf("answer is a %q with %d columns, not a Table", t.Kind, len(t.ColumnDefinitions))
				}
				res.bytes += int64(len(body))
				res.objects += len(t.Rows)
				if !verified[w] {
					for _, r := range t.Rows {
						names = append(names, r.Object.Metadata.Name)
					}
				}
				cont = t.Metadata.Continue
				if cont == "" {
					break
				}
			}
			if res.objects != objects {
				return res, fmt.Errorf("Table listing of %s gave %d rows, want %d", ns, res.objects, objects)
			}
			if !verified[w] {
				if err := checkNames(ns, objects, len(names), func(i int) (string, string) { return ns, names[i] }); err != nil {
					return res, err
				}
				verified[w] = true
			}
			return res, nil
		})
}

// checkNames checks a listing of a filled namespace: every pod-%05d once.
func checkNames(ns string, want, got int, at func(int) (string, string)) error {
	if got != want {
		return fmt.Errorf("list of %s returned %d pods, want %d", ns, got, want)
	}
	seen := make([]bool, want)
	for i := range got {
		gotNS, name := at(i)
		var k int
		if _, err := fmt.Sscanf(name, "pod-%05d", &k); err != nil || k < 0 || k >= want || gotNS != ns {
			return fmt.Errorf("list of %s returned an unexpected pod %s/%s", ns, gotNS, name)
		}
		if seen[k] {
			return fmt.Errorf("list of %s returned %s twice", ns, name)
		}
		seen[k] = true
	}
	return nil
}

func thousands(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// fillLatency sets p50, p99 and max.
func fillLatency(r *Row, lats []time.Duration) {
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	r.P50ms = ms(pct(lats, 0.50))
	r.P99ms = ms(pct(lats, 0.99))
	r.Maxms = ms(lats[len(lats)-1])
}

// pct is the nearest-rank percentile of sorted samples.
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
