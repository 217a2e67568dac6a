package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const nsWatch = "bench-watch"

// delivery is one event a watcher read: the object's resourceVersion and
// when the line arrived (since the run's base time).
type delivery struct {
	rv  int64
	at  time.Duration
	typ string
}

type watcher struct {
	master int
	mu     sync.Mutex
	got    []delivery
	n      atomic.Int64 // MODIFIED events read
	maxRV  atomic.Int64 // highest resourceVersion read
	ended  error        // why the stream ended early, if it did (under mu)
	parse  int          // lines whose quick parse disagreed with encoding/json
}

func (w *watcher) setEnded(err error) {
	w.mu.Lock()
	w.ended = err
	w.mu.Unlock()
}

func (w *watcher) endedErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

// quickEvent pulls the type and the object's resourceVersion out of a
// watch line without decoding the whole object (1,000 watchers decoding
// every event would compete with the masters for the two cores). The first
// "resourceVersion" of a pod event is the pod's own.
func quickEvent(line []byte) (string, int64, bool) {
	const tp = `{"type":"`
	if !bytes.HasPrefix(line, []byte(tp)) {
		return "", 0, false
	}
	rest := line[len(tp):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", 0, false
	}
	typ := string(rest[:end])
	const rk = `"resourceVersion":"`
	i := bytes.Index(rest, []byte(rk))
	if i < 0 {
		return typ, 0, false
	}
	num := rest[i+len(rk):]
	j := bytes.IndexByte(num, '"')
	if j < 0 {
		return typ, 0, false
	}
	rv, err := strconv.ParseInt(string(num[:j]), 10, 64)
	return typ, rv, err == nil
}

// watchResult is one writer rate of the fan-out scenario.
type watchResult struct {
	Watchers        int       `json:"watchers"`
	Pods            int       `json:"pods"`
	RatePerSec      float64   `json:"target_writes_per_sec"`
	Writes          int       `json:"writes_acknowledged"`
	WriteErrors     int       `json:"write_errors"`
	SetupSeconds    float64   `json:"watch_setup_seconds"`
	SetupErrors     int       `json:"watch_setup_errors"`
	Expected        int64     `json:"deliveries_expected"`
	Delivered       int64     `json:"deliveries_received"`
	Missing         int64     `json:"deliveries_missing"`
	Duplicates      int64     `json:"deliveries_duplicated"`
	OutOfOrder      int64     `json:"deliveries_out_of_order"`
	Unexpected      int64     `json:"unexpected_events"`
	Foreign         int64     `json:"events_from_other_writers"`
	WriteConflicts  int       `json:"writer_conflicts_409"`
	EndedEarly      int       `json:"streams_ended_early"`
	ParseMismatch   int       `json:"parse_mismatches"`
	BeforeAck       int64     `json:"deliveries_before_ack"`
	WatchersAllGot  int       `json:"watchers_with_every_event"`
	DrainSeconds    float64   `json:"drain_seconds"`
	PerMasterP99ms  []float64 `json:"per_master_p99_ms_from_ack"`
	EndedEarlyCause string    `json:"ended_early_cause,omitempty"`
	IdleCores       float64   `json:"masters_cores_streams_open_no_writes"`
}

// ack is one acknowledged write of the fan-out writer.
type ack struct {
	rv        int64
	sent, got time.Duration
	master    int
}

// watchFanout opens b.watchers watch streams on one namespace, spread over
// the masters, then, for each writer rate in turn, updates pods at that
// rate (writes rotate over the masters) and measures, for every event at
// every watcher, the time from the write's acknowledgement (its PUT
// response read) to the event's line arriving. Each rate gives two rows
// (delivery latency, the writer's PUTs) and its checks.
func (b *bench) watchFanout() ([]*Row, []*watchResult, error) {
	fmt.Fprintf(os.Stderr, "apibench: watch fan-out: %d watchers, %d pods, %v updates/s for %s each...\n", b.watchers, b.watchPods, b.watchRates, b.watchDur)
	var pods []*corev1.Pod
	var pmu sync.Mutex
	b.fillSink = func(p *corev1.Pod) { pmu.Lock(); pods = append(pods, p); pmu.Unlock() }
	_, err := b.fill(nsWatch, b.watchPods)
	b.fillSink = nil
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(pods, func(x, y *corev1.Pod) int { return strings.Compare(x.Name, y.Name) })
	ctx := context.Background()
	rv, err := b.api.revision(ctx, 0, nsWatch)
	if err != nil {
		return nil, nil, err
	}
	base := time.Now()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ws := make([]*watcher, b.watchers)
	// Open the streams, 32 handshakes at a time.
	sem := make(chan struct{}, 32)
	var setup sync.WaitGroup
	var setupErrs atomic.Int64
	var readers sync.WaitGroup
	t0 := time.Now()
	path := "/api/v1/namespaces/" + nsWatch + "/pods?watch=true&resourceVersion=" + rv
	capacity := 16
	for _, r := range b.watchRates {
		capacity += int(r*b.watchDur.Seconds()) + 1
	}
	for i := range ws {
		w := &watcher{master: i % len(b.cl.masters), got: make([]delivery, 0, capacity)}
		ws[i] = w
		setup.Add(1)
		sem <- struct{}{}
		go func() {
			defer setup.Done()
			resp, err := b.api.send(wctx, w.master, "GET", path, nil, "")
			<-sem
			if err != nil || resp.StatusCode != 200 {
				setupErrs.Add(1)
				if err == nil {
					err = httpErr(resp.StatusCode, nil)
					resp.Body.Close()
				}
				w.setEnded(err)
				b.noteErr("watch setup", err)
				return
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 16<<10), 8<<20)
				check := i == 0 // watcher 0 checks the quick parse against encoding/json
				for sc.Scan() {
					at := time.Since(base)
					line := sc.Bytes()
					typ, rv, ok := quickEvent(line)
					if check {
						var ev struct {
							Type   string  `json:"type"`
							Object objMeta `json:"object"`
						}
						if json.Unmarshal(line, &ev) != nil || ev.Type != typ || (ok && ev.Object.Metadata.ResourceVersion != strconv.FormatInt(rv, 10)) {
							w.parse++
						}
					}
					if !ok {
						typ = "unparsed:" + typ
					}
					w.mu.Lock()
					w.got = append(w.got, delivery{rv: rv, at: at, typ: typ})
					w.mu.Unlock()
					if typ == "MODIFIED" {
						w.n.Add(1)
					}
					if ok && rv > w.maxRV.Load() {
						w.maxRV.Store(rv)
					}
				}
				if wctx.Err() == nil {
					err := sc.Err()
					if err == nil {
						err = fmt.Errorf("stream closed by the server")
					}
					w.setEnded(err)
				}
			}()
		}()
	}
	setup.Wait()
	setupSecs := time.Since(t0).Seconds()
	nSetupErrs := int(setupErrs.Load())
	fmt.Fprintf(os.Stderr, "apibench:   %d watch streams open in %.1fs (%d failed)\n", b.watchers-nSetupErrs, setupSecs, nSetupErrs)
	time.Sleep(time.Second)
	i0 := b.snap()
	time.Sleep(3 * time.Second)
	idle := &Row{}
	cpuBetween(idle, i0, b.snap(), 0)

	var rows []*Row
	var results []*watchResult
	var allAcks []ack
	phase := make(map[int64]int) // rv -> index of the rate that wrote it
	gen := 0
	for pi, rate := range b.watchRates {
		res := &watchResult{Watchers: b.watchers, Pods: b.watchPods, RatePerSec: rate, SetupSeconds: setupSecs, SetupErrors: nSetupErrs, IdleCores: idle.ServerCores}
		results = append(results, res)
		// The writer: one update per tick, rotating over pods and masters.
		var acks []ack
		var putLats []time.Duration
		b.profileStart(rowSpec{name: fmt.Sprintf("watch fan-out %g per s", rate), clients: b.watchers})
		s0 := b.snap()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		end := time.Now().Add(b.watchDur)
		for k := 0; time.Now().Before(end); k++ {
			<-tick.C
			gen++
			j := gen % len(pods)
			m := gen % len(b.cl.masters)
			pctx, pcancel := context.WithTimeout(ctx, b.opTimeout)
			first := time.Since(base)
			var sent, got time.Duration
			var p corev1.Pod
			var err error
			// Another writer (e.g. the scheduler, with -scheduler-name
			// default-scheduler) may have changed the pod: read it again
			// and retry, as a controller would.
			for attempt := 0; attempt < 5; attempt++ {
				next := pods[j].DeepCopy()
				if next.Annotations == nil {
					next.Annotations = map[string]string{}
				}
				next.Annotations["apibench/generation"] = strconv.Itoa(gen)
				body, _ := json.Marshal(next)
				sent = time.Since(base)
				var code int
				var rb []byte
				code, rb, err = b.api.do(pctx, m, "PUT", "/api/v1/namespaces/"+nsWatch+"/pods/"+next.Name, body, "")
				got = time.Since(base)
				if err == nil && code == http.StatusConflict {
					res.WriteConflicts++
					var fresh corev1.Pod
					gcode, gb, gerr := b.api.do(pctx, m, "GET", "/api/v1/namespaces/"+nsWatch+"/pods/"+next.Name, nil, "")
					if gerr == nil && gcode == 200 && json.Unmarshal(gb, &fresh) == nil {
						pods[j] = &fresh
						continue
					}
				}
				if err == nil && code != 200 {
					err = httpErr(code, rb)
				}
				if err == nil {
					err = json.Unmarshal(rb, &p)
				}
				break
			}
			pcancel()
			if err != nil {
				res.WriteErrors++
				b.noteErr("watch writer", err)
				continue
			}
			prv, _ := strconv.ParseInt(p.ResourceVersion, 10, 64)
			pods[j] = &p
			acks = append(acks, ack{rv: prv, sent: sent, got: got, master: m})
			phase[prv] = pi
			putLats = append(putLats, got-first)
		}
		tick.Stop()
		allAcks = append(allAcks, acks...)
		writeEnd := time.Now()
		// Drain: wait until every open stream has every event so far, or
		// give up.
		var want int64
		if len(acks) > 0 {
			want = acks[len(acks)-1].rv
		}
		for time.Since(writeEnd) < b.watchDrain {
			all := true
			for _, w := range ws {
				if w.endedErr() == nil && w.maxRV.Load() < want {
					all = false
					break
				}
			}
			if all {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		res.DrainSeconds = time.Since(writeEnd).Seconds()
		s1 := b.snap()
		b.profileStop()
		rows = append(rows, b.scorePhase(ws, acks, putLats, res, s0, s1)...)
	}
	wcancel()
	readers.Wait()
	// Events that belong to no write of any rate: other writers' (not an
	// error), or not a pod event at all (an error).
	for _, w := range ws {
		for _, d := range w.got {
			if _, ours := phase[d.rv]; ours && d.typ == "MODIFIED" {
				continue
			}
			switch d.typ {
			case "ADDED", "MODIFIED", "DELETED":
				results[len(results)-1].Foreign++
			default:
				results[len(results)-1].Unexpected++
			}
		}
		results[0].ParseMismatch += w.parse
	}
	for _, res := range results {
		if res.Unexpected > 0 {
			for _, r := range rows {
				if r.Op == "watch" && r.watchRate == res.RatePerSec {
					r.Errors["unexpected event"] = int(res.Unexpected)
					r.ErrorCount += int(res.Unexpected)
					r.verdict()
				}
			}
		}
	}
	return rows, results, nil
}

// scorePhase scores one writer rate's deliveries at every watcher.
func (b *bench) scorePhase(ws []*watcher, acks []ack, putLats []time.Duration, res *watchResult, s0, s1 snap) []*Row {
	res.Writes = len(acks)
	byRV := make(map[int64]int, len(acks))
	for i, a := range acks {
		byRV[a.rv] = i
	}
	var fromAck, fromSend []time.Duration
	perMaster := make([][]time.Duration, len(b.cl.masters))
	for _, w := range ws {
		if err := w.endedErr(); err != nil {
			res.EndedEarly++
			if res.EndedEarlyCause == "" {
				res.EndedEarlyCause = err.Error()
			}
		}
		seen := make([]bool, len(acks))
		last := -1
		count := 0
		w.mu.Lock()
		for _, d := range w.got {
			i, ok := byRV[d.rv]
			if d.typ != "MODIFIED" || !ok {
				continue // another rate's, or unexpected (counted at the end)
			}
			if seen[i] {
				res.Duplicates++
				continue
			}
			seen[i] = true
			count++
			if i < last {
				res.OutOfOrder++
			}
			last = i
			lat := d.at - acks[i].got
			if lat < 0 {
				res.BeforeAck++
				lat = 0
			}
			fromAck = append(fromAck, lat)
			fromSend = append(fromSend, d.at-acks[i].sent)
			perMaster[w.master] = append(perMaster[w.master], lat)
		}
		w.mu.Unlock()
		res.Delivered += int64(count)
		res.Missing += int64(len(acks) - count)
		if count == len(acks) {
			res.WatchersAllGot++
		}
	}
	res.Expected = int64(len(acks)) * int64(b.watchers)
	for _, pm := range perMaster {
		slices.Sort(pm)
		if len(pm) > 0 {
			res.PerMasterP99ms = append(res.PerMasterP99ms, ms(pct(pm, 0.99)))
		}
	}
	wall := s1.at.Sub(s0.at).Seconds()
	deliv := &Row{Name: fmt.Sprintf("watch: update acknowledged -> event at each of %s watchers, %g updates/s", thousands(b.watchers), res.RatePerSec), Op: "watch",
		Clients: b.watchers, Objects: b.watchPods, Ops: len(fromAck), Seconds: wall, OpsPerSec: float64(len(fromAck)) / wall, Errors: map[string]int{},
		watchRate: res.RatePerSec}
	if res.Missing > 0 {
		deliv.Errors["missing"] = int(res.Missing)
	}
	if res.Duplicates > 0 {
		deliv.Errors["duplicate"] = int(res.Duplicates)
	}
	if res.OutOfOrder > 0 {
		deliv.Errors["out of order"] = int(res.OutOfOrder)
	}
	if res.SetupErrors > 0 {
		deliv.Errors["watch not opened"] = res.SetupErrors
	}
	for _, n := range deliv.Errors {
		deliv.ErrorCount += n
	}
	fillLatency(deliv, fromAck)
	slices.Sort(fromSend)
	if len(fromSend) > 0 {
		deliv.P50FromSendms = ms(pct(fromSend, 0.5))
		deliv.P99FromSendms = ms(pct(fromSend, 0.99))
	}
	cpuBetween(deliv, s0, s1, len(acks))
	deliv.CPUPerWhat = "write"
	deliv.verdict()

	writer := &Row{Name: fmt.Sprintf("update pod while %s watchers receive (one writer, %g/s)", thousands(b.watchers), res.RatePerSec), Op: "update-fanout",
		Clients: 1, Objects: b.watchPods, Ops: len(putLats), Seconds: wall, OpsPerSec: float64(len(putLats)) / wall, SLOms: 1000, Errors: map[string]int{}}
	if res.WriteErrors > 0 {
		writer.Errors["write failed"] = res.WriteErrors
		writer.ErrorCount = res.WriteErrors
	}
	fillLatency(writer, putLats)
	cpuBetween(writer, s0, s1, len(acks))
	writer.CPUPerWhat = "write (whole fan-out)"
	writer.verdict()
	fmt.Fprintf(os.Stderr, "apibench:   %s\napibench:   %s\n", deliv.short(), writer.short())
	return []*Row{deliv, writer}
}
