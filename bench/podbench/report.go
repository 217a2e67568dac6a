package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what a run prints (and writes with -json).
type Report struct {
	Command       string         `json:"command"`
	Started       string         `json:"started"`
	Machine       string         `json:"machine"`
	Go            string         `json:"go"`
	Commit        string         `json:"commit"`
	Tree          string         `json:"tree"`
	Drover        string         `json:"drover"`
	DroverVersion string         `json:"droverVersion"`
	Runc          string         `json:"runc"`
	RuncVersion   string         `json:"runcVersion"`
	Setup         []string       `json:"setup"`
	Rows          []SumRow       `json:"rows"`
	SLO           []SLORow       `json:"slo"`
	Stages        []StageRow     `json:"stages"`
	Memory        []MemRow       `json:"memory"`
	Noise         []string       `json:"noise"`
	IdleMem       *memSnap       `json:"idleMemory"`
	Reps          []*repResult   `json:"reps"`
	Errors        []string       `json:"errors,omitempty"`
	WallSeconds   float64        `json:"wallSeconds"`
	Params        map[string]any `json:"params"`
}

// Cell is median [min–max] over repetitions.
type Cell struct {
	Med float64 `json:"median"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	N   int     `json:"reps"`
}

type SumRow struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Drover *Cell   `json:"drover,omitempty"`
	Runc   *Cell   `json:"runc,omitempty"`
	Ratio  float64 `json:"droverOverRunc,omitempty"`
}

type SLORow struct {
	Name   string  `json:"name"`
	P99    *Cell   `json:"p99Ms"`
	Passed int     `json:"repsPassed"`
	Reps   int     `json:"reps"`
	Target float64 `json:"targetMs"`
}

type StageRow struct {
	Stage     string `json:"stage"`
	SingleP50 *Cell  `json:"singleP50Ms"`
	SingleP99 *Cell  `json:"singleP99Ms"`
	BurstP50  *Cell  `json:"burstP50Ms"`
	BurstP99  *Cell  `json:"burstP99Ms"`
}

type MemRow struct {
	What  string `json:"what"`
	Unit  string `json:"unit"`
	Value *Cell  `json:"value"`
}

// pct is the nearest-rank percentile of vals (NaN-free); NaN when empty.
func pct(vals []float64, p float64) float64 {
	v := slices.Clone(vals)
	v = slices.DeleteFunc(v, func(x float64) bool { return math.IsNaN(x) })
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	i := int(math.Ceil(p*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func cellOf(vals []float64) *Cell {
	v := slices.DeleteFunc(slices.Clone(vals), func(x float64) bool { return math.IsNaN(x) || x < 0 })
	if len(v) == 0 {
		return nil
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return &Cell{Med: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

func span(a, b time.Time) float64 {
	if a.IsZero() || b.IsZero() {
		return math.NaN()
	}
	return ms(b.Sub(a))
}

// stage is one part of a pod's start; the parts add up to the total.
type stage struct {
	name string
	f    func(s *podSample) float64
}

var stages = []stage{
	{"API create: POST -> response", func(s *podSample) float64 { return span(s.Create, s.APIDone) }},
	{"scheduling: response -> bound (spec.nodeName) seen on the watch", func(s *podSample) float64 { return span(s.APIDone, s.Bound) }},
	{"agent pickup + netns + CNI loopback: bound seen -> loopback ADD done", func(s *podSample) float64 { return span(s.Bound, s.LoUp) }},
	{"CNI pod network ADD (bridge, host-local, portmap) + sandbox state: loopback done -> sandbox set up", func(s *podSample) float64 { return span(s.LoUp, s.Sandbox) }},
	{"volumes: sandbox set up -> Pulling event", func(s *podSample) float64 { return span(s.Sandbox, s.Pulling) }},
	{"image check (imagePullPolicy Never): Pulling -> Pulled", func(s *podSample) float64 { return span(s.Pulling, s.Pulled) }},
	{"rootfs (overlay mount) + container spec: Pulled -> runtime Start", func(s *podSample) float64 { return span(s.Pulled, s.RTStart) }},
	{"runtime start: Start -> container process started (shim fork+exec, libcontainer create+run)", func(s *podSample) float64 { return span(s.RTStart, s.ProcUp) }},
	{"status report: process started -> Running seen on the watch", func(s *podSample) float64 { return span(s.ProcUp, s.Running) }},
	{"total: create -> Running seen on the watch", func(s *podSample) float64 { return span(s.Create, s.Running) }},
}

// runtimeStage is the stage runc's number compares with.
var runtimeStage = slices.IndexFunc(stages, func(s stage) bool { return strings.HasPrefix(s.name, "runtime start") })

func ok(samples []*podSample) []*podSample {
	return slices.DeleteFunc(slices.Clone(samples), func(s *podSample) bool { return s.Err != "" })
}

func values(samples []*podSample, f func(*podSample) float64) []float64 {
	var out []float64
	for _, s := range ok(samples) {
		out = append(out, f(s))
	}
	return out
}

func totals(samples []*podSample) []float64 {
	return values(samples, stages[len(stages)-1].f)
}

func pooled(bursts [][]*podSample) []*podSample {
	var out []*podSample
	for _, b := range bursts {
		out = append(out, b...)
	}
	return out
}

func pooledF(bursts [][]float64) []float64 {
	var out []float64
	for _, b := range bursts {
		out = append(out, b...)
	}
	return out
}

// perRep is a cell of one number computed per repetition.
func (b *bench) perRep(f func(r *repResult) float64) *Cell {
	var v []float64
	for _, r := range b.reps {
		v = append(v, f(r))
	}
	return cellOf(v)
}

func ratio(d, r *Cell) float64 {
	if d == nil || r == nil || r.Med == 0 {
		return 0
	}
	return d.Med / r.Med
}

func (b *bench) summarize() {
	rep := b.report
	cfg := b.cfg
	n := cfg.burst
	rep.Params = map[string]any{"masters": cfg.masters, "reps": cfg.reps, "single": cfg.single, "burst": cfg.burst, "bursts": cfg.bursts,
		"runcTrue": cfg.runcTrue, "gapMs": cfg.gap.Milliseconds(), "podTimeout": cfg.podTimeout.String(), "agentLogLevel": cfg.agentLogLevel}
	rep.Setup = append(rep.Setup,
		fmt.Sprintf("method: %d repetitions, drover and runc alternating in order (rep 1: drover first); each repetition: drover %d pods one at a time (each deleted, and its teardown on the node awaited, then %s pause), %d burst(s) of %d pods created at once (all Running, then all deleted); runc %d containers one at a time (`runc run -d`, then `runc delete -f`, %s pause), %d burst(s) of %d `runc run -d` at once, %d `runc run` of /bin/true; one untimed warm-up pod and runc run first",
			cfg.reps, cfg.single, cfg.gap, cfg.bursts, n, cfg.single, cfg.gap, cfg.bursts, n, cfg.runcTrue),
		"latency: drover from just before the POST to the watch event showing phase Running with the container running (Kubernetes' SLI starts at the pod's creation timestamp, so this is stricter by the API create); runc from starting `runc run -d` to its return (the container's process started)",
		"breakdown: times from this machine's one clock: the watch (client), the mtimes of libcni's cached ADD results (loopback, then the pod network) and of the sandbox's state file, the agent's events (names carry its clock in ns: <pod>.<hex UnixNano>), the runtime's spec.json createdAt and the shim's status.json startedAt (read while the pod runs); file mtimes come from the kernel's coarse clock (one timer tick), so the stages next to the two network marks are each ± a tick, their sum exact; the API's own times (PodScheduled, startTime, containerStatuses startedAt) are whole seconds and kept in -json only",
		"percentiles: nearest rank per repetition (p99 of 30 samples is their maximum; of a burst of 50, its maximum), then median [min–max] over repetitions",
		"CPU: other processes = machine busy time (/proc/stat) minus this program's cpuacct group (it, the masters, the agent, shims, CNI plugins, runc) and the container cgroups; kernel threads (e.g. the fsyncs' block I/O) count as other",
	)

	single := func(r *repResult) []float64 { return totals(r.Single) }
	burst := func(r *repResult) []float64 { return totals(pooled(r.Bursts)) }
	rtSingle := func(r *repResult) []float64 { return values(r.Single, stages[runtimeStage].f) }
	rtBurst := func(r *repResult) []float64 { return values(pooled(r.Bursts), stages[runtimeStage].f) }
	row := func(name, unit string, d, rc *Cell) {
		rep.Rows = append(rep.Rows, SumRow{Name: name, Unit: unit, Drover: d, Runc: rc, Ratio: ratio(d, rc)})
	}
	for _, p := range []float64{0.5, 0.99} {
		pn := fmt.Sprintf("p%.0f", p*100)
		row(fmt.Sprintf("one at a time: start latency¹, %s", pn), "ms",
			b.perRep(func(r *repResult) float64 { return pct(single(r), p) }), b.perRep(func(r *repResult) float64 { return pct(r.RuncSingle, p) }))
	}
	for _, p := range []float64{0.5, 0.99} {
		pn := fmt.Sprintf("p%.0f", p*100)
		row(fmt.Sprintf("one at a time: runtime start alone², %s", pn), "ms",
			b.perRep(func(r *repResult) float64 { return pct(rtSingle(r), p) }), b.perRep(func(r *repResult) float64 { return pct(r.RuncSingle, p) }))
	}
	for _, p := range []float64{0.5, 0.99} {
		pn := fmt.Sprintf("p%.0f", p*100)
		row(fmt.Sprintf("burst of %d at once: start latency¹, %s", n, pn), "ms",
			b.perRep(func(r *repResult) float64 { return pct(burst(r), p) }), b.perRep(func(r *repResult) float64 { return pct(pooledF(r.RuncBursts), p) }))
	}
	for _, p := range []float64{0.5, 0.99} {
		pn := fmt.Sprintf("p%.0f", p*100)
		row(fmt.Sprintf("burst of %d: runtime start alone², %s", n, pn), "ms",
			b.perRep(func(r *repResult) float64 { return pct(rtBurst(r), p) }), b.perRep(func(r *repResult) float64 { return pct(pooledF(r.RuncBursts), p) }))
	}
	row(fmt.Sprintf("burst of %d: until the last has started¹", n), "ms",
		b.perRep(func(r *repResult) float64 { return pct(r.BurstAll, 0.5) }), b.perRep(func(r *repResult) float64 { return pct(r.RuncBurstAll, 0.5) }))
	cpuOf := func(cs []*cpuPerPod, f func(*cpuPerPod) float64) float64 {
		var v []float64
		for _, c := range cs {
			if c != nil {
				v = append(v, f(c))
			}
		}
		return pct(v, 0.5)
	}
	row(fmt.Sprintf("burst of %d: node CPU per pod started (drover: agent + CNI plugins + shims + container init; runc: runc + container init)", n), "ms",
		b.perRep(func(r *repResult) float64 { return cpuOf(r.BurstCPU, func(c *cpuPerPod) float64 { return c.NodeMs }) }),
		b.perRep(func(r *repResult) float64 {
			return cpuOf(r.RuncBurstCPU, func(c *cpuPerPod) float64 { return c.NodeMs })
		}))
	row(fmt.Sprintf("burst of %d: of which the agent itself", n), "ms",
		b.perRep(func(r *repResult) float64 {
			return cpuOf(r.BurstCPU, func(c *cpuPerPod) float64 { return c.AgentOwnMs })
		}), nil)
	row(fmt.Sprintf("burst of %d: of which the agent's children (CNI plugins, iptables, the shims' fork step)", n), "ms",
		b.perRep(func(r *repResult) float64 {
			return cpuOf(r.BurstCPU, func(c *cpuPerPod) float64 { return c.AgentMs - c.AgentOwnMs })
		}), nil)
	row(fmt.Sprintf("burst of %d: of which the shims and container cgroups (libcontainer init, the container)", n), "ms",
		b.perRep(func(r *repResult) float64 {
			return cpuOf(r.BurstCPU, func(c *cpuPerPod) float64 { return c.ShimsInitMs })
		}), nil)
	row(fmt.Sprintf("burst of %d: masters' CPU per pod (API, scheduler, status, events)", n), "ms",
		b.perRep(func(r *repResult) float64 {
			return cpuOf(r.BurstCPU, func(c *cpuPerPod) float64 { return c.MastersMs })
		}), nil)
	if cfg.runcTrue > 0 {
		row("runc run of /bin/true to its exit (create, start, wait, delete), p50", "ms", nil,
			b.perRep(func(r *repResult) float64 { return pct(r.RuncTrue, 0.5) }))
	}
	size := func(p string) float64 {
		if fi, err := os.Stat(p); err == nil {
			return float64(fi.Size()) / 1e6
		}
		return math.NaN()
	}
	row(fmt.Sprintf("one exec of the binary, `--help` to exit (drover %.1f MB, runc %.1f MB), p50", size(b.bin), size(b.runc.bin)), "ms",
		b.perRep(func(r *repResult) float64 { return pct(r.ExecDrover, 0.5) }), b.perRep(func(r *repResult) float64 { return pct(r.ExecRunc, 0.5) }))
	row("one at a time: pod teardown, DELETE sent -> nothing left on the node, p50", "ms",
		b.perRep(func(r *repResult) float64 {
			return pct(values(r.Single, func(s *podSample) float64 { return span(s.Deleted, s.Cleaned) }), 0.5)
		}), nil)
	row(fmt.Sprintf("burst of %d: teardown, DELETEs sent -> the last torn down", n), "ms",
		b.perRep(func(r *repResult) float64 {
			var v []float64
			for _, bs := range r.Bursts {
				var first, last time.Time
				for _, s := range bs {
					if first.IsZero() || s.Deleted.Before(first) {
						first = s.Deleted
					}
					if s.Cleaned.After(last) {
						last = s.Cleaned
					}
				}
				v = append(v, span(first, last))
			}
			return pct(v, 0.5)
		}), nil)

	// The SLO: p99 <= 5 s.
	const slo = 5000.0
	for _, x := range []struct {
		name string
		f    func(r *repResult) float64
	}{
		{fmt.Sprintf("one pod at a time (%d per repetition)", cfg.single), func(r *repResult) float64 { return pct(single(r), 0.99) }},
		{fmt.Sprintf("burst of %d on one node (%d per repetition)", n, n*cfg.bursts), func(r *repResult) float64 { return pct(burst(r), 0.99) }},
	} {
		passed := 0
		for _, r := range b.reps {
			if v := x.f(r); !math.IsNaN(v) && v <= slo && len(r.Errors) == 0 {
				passed++
			}
		}
		rep.SLO = append(rep.SLO, SLORow{Name: x.name, P99: b.perRep(x.f), Passed: passed, Reps: len(b.reps), Target: slo})
	}

	for _, st := range stages {
		sr := StageRow{Stage: st.name}
		sr.SingleP50 = b.perRep(func(r *repResult) float64 { return pct(values(r.Single, st.f), 0.5) })
		sr.SingleP99 = b.perRep(func(r *repResult) float64 { return pct(values(r.Single, st.f), 0.99) })
		sr.BurstP50 = b.perRep(func(r *repResult) float64 { return pct(values(pooled(r.Bursts), st.f), 0.5) })
		sr.BurstP99 = b.perRep(func(r *repResult) float64 { return pct(values(pooled(r.Bursts), st.f), 0.99) })
		rep.Stages = append(rep.Stages, sr)
	}

	rep.IdleMem = b.idleMem
	mem := func(what, unit string, f func(m *memSnap) float64) {
		rep.Memory = append(rep.Memory, MemRow{What: what, Unit: unit, Value: b.perRep(func(r *repResult) float64 {
			var v []float64
			for _, m := range r.Mem {
				if m != nil {
					v = append(v, f(m))
				}
			}
			return pct(v, 0.5)
		})})
	}
	if b.idleMem != nil {
		idle := *b.idleMem
		rep.Memory = append(rep.Memory, MemRow{What: "agent RSS, no pods (after the warm-up)", Unit: "MB", Value: cellOf([]float64{idle.AgentRSSMB})})
	}
	mem(fmt.Sprintf("agent RSS with %d pods running", n), "MB", func(m *memSnap) float64 { return m.AgentRSSMB })
	mem("  of which anonymous (heap, stacks)", "MB", func(m *memSnap) float64 { return m.AgentAnon })
	mem("agent PSS", "MB", func(m *memSnap) float64 { return m.AgentPSSMB })
	mem("agent peak RSS so far (VmHWM)", "MB", func(m *memSnap) float64 { return m.AgentHWMMB })
	mem("shims running", "", func(m *memSnap) float64 { return float64(m.Shims) })
	mem("shims, RSS summed (shared pages of the drover binary counted in each)", "MB", func(m *memSnap) float64 { return m.ShimRSSMB })
	mem("shims, PSS summed (shared pages split)", "MB", func(m *memSnap) float64 { return m.ShimPSSMB })
	mem("shims, anonymous summed", "MB", func(m *memSnap) float64 { return m.ShimAnonMB })
	mem("per shim, PSS", "MB", func(m *memSnap) float64 {
		if m.Shims == 0 {
			return math.NaN()
		}
		return m.ShimPSSMB / float64(m.Shims)
	})
	mem("containers (memory cgroup /drover/podbench, page cache included)", "MB", func(m *memSnap) float64 { return m.CtrMemMB })
	mem(fmt.Sprintf("masters' RSS summed (%d)", cfg.masters), "MB", func(m *memSnap) float64 { return m.MastersMB })

	for _, side := range []string{"drover", "runc"} {
		var other []float64
		for _, r := range b.reps {
			for _, w := range r.Windows {
				if w.Side == side {
					other = append(other, w.OtherCores)
				}
			}
		}
		if c := cellOf(other); c != nil {
			rep.Noise = append(rep.Noise, fmt.Sprintf("CPU used by other processes during %s's windows: median %.2f, max %.2f cores (of %d), %d windows", side, c.Med, c.Max, runtime.NumCPU(), c.N))
		}
	}
	for _, r := range b.reps {
		rep.Errors = append(rep.Errors, r.Errors...)
	}
	rep.Reps = b.reps
}

func fnum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == math.Trunc(v) && v < 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 1000:
		return thousands(int64(math.Round(v)))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (c *Cell) String() string {
	if c == nil {
		return "—"
	}
	if c.N == 1 || c.Min == c.Max {
		return fnum(c.Med)
	}
	return fmt.Sprintf("%s [%s–%s]", fnum(c.Med), fnum(c.Min), fnum(c.Max))
}

func writeText(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\npodbench: pod startup on a real drover node, beside runc\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", r.Command)
	fmt.Fprintf(w, "- started: %s; wall time %s\n", r.Started, (time.Duration(r.WallSeconds) * time.Second).String())
	fmt.Fprintf(w, "- machine: %s, %s\n", r.Machine, r.Go)
	fmt.Fprintf(w, "- drover: %s (%s); commit %s, %s\n", r.DroverVersion, r.Drover, r.Commit, r.Tree)
	fmt.Fprintf(w, "- runc: %s (%s)\n", r.RuncVersion, r.Runc)
	for _, s := range r.Setup {
		fmt.Fprintf(w, "- %s\n", s)
	}
	for _, s := range r.Noise {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintf(w, "\n| row | unit | drover | runc | drover/runc |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		ratio := ""
		if row.Ratio > 0 {
			ratio = fmt.Sprintf("%.1f", row.Ratio)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.Name, row.Unit, row.Drover, row.Runc, ratio)
	}
	fmt.Fprintf(w, "\n¹ drover: create (just before the POST) -> the watch shows the pod Running; runc: `runc run -d` started -> returned (the container's process has started).\n")
	fmt.Fprintf(w, "² drover: the runtime's Start called (spec.json createdAt) -> the container's process started (the shim's status.json startedAt): the shim's two fork+execs of the drover binary and libcontainer's create + run; runc: `runc run -d` as above.\n")
	fmt.Fprintf(w, "\nKubernetes pod startup SLO (p99 <= 5 s, create -> Running observed by a watch; image present):\n\n| case | p99 ms | within 5 s |\n|---|---|---|\n")
	for _, s := range r.SLO {
		verdict := fmt.Sprintf("%d of %d repetitions", s.Passed, s.Reps)
		if s.Passed == s.Reps {
			verdict = "PASS, " + verdict
		} else {
			verdict = "FAIL, " + verdict
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", s.Name, s.P99, verdict)
	}
	fmt.Fprintf(w, "\nWhere a pod's start goes (ms; each stage's own p50 / p99, so the columns need not add up):\n\n| stage | one at a time p50 | p99 | burst p50 | burst p99 |\n|---|---|---|---|---|\n")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.Stage, s.SingleP50, s.SingleP99, s.BurstP50, s.BurstP99)
	}
	fmt.Fprintf(w, "\nMemory (with the burst's pods all Running, before their deletion; /proc/<pid>/status and smaps_rollup):\n\n| what | unit | value |\n|---|---|---|\n")
	for _, m := range r.Memory {
		fmt.Fprintf(w, "| %s | %s | %s |\n", m.What, m.Unit, m.Value)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\nErrors (%d):\n", len(r.Errors))
		for i, e := range r.Errors {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more in -json\n", len(r.Errors)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func writeJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func commandLine() string {
	var args []string
	for _, a := range os.Args {
		if strings.ContainsAny(a, " \"'$") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
		args[0] = "go run ./bench/podbench"
	}
	return strings.Join(args, " ")
}

func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^MemTotal:\s+(\d+)`).FindSubmatch(b); m != nil {
			kb, _ := strconv.ParseFloat(string(m[1]), 64)
			mem = fmt.Sprintf("%.0f GB RAM", kb/(1<<20))
		}
	}
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			model = " (" + strings.TrimSpace(string(m[1])) + ")"
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	cg := "cgroup v1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cg = "cgroup v2"
	}
	return fmt.Sprintf("%d CPUs%s, %s, %s, %s", runtime.NumCPU(), model, mem, kernel, cg)
}

// gitState is the short commit and which non-test Go files outside
// bench/ differ from it in the working tree (they may be in a drover
// built from the tree).
func gitState() (string, string) {
	root, err := moduleRoot()
	if err != nil {
		return "unknown", "not a checkout"
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown", "git failed"
	}
	commit := strings.TrimSpace(string(out))
	st, _ := exec.Command("git", "-C", root, "status", "--porcelain").Output()
	var changed []string
	for _, line := range strings.Split(string(st), "\n") {
		if len(line) < 4 {
			continue
		}
		p := strings.TrimSpace(line[3:])
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !strings.HasPrefix(p, "bench/") {
			changed = append(changed, p)
		}
	}
	if len(changed) == 0 {
		return commit, "working tree: no uncommitted non-test Go changes outside bench/"
	}
	return commit, "working tree: uncommitted changes to " + strings.Join(changed, ", ")
}
