package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const clkTck = 100 // USER_HZ

// procCPU is a process's CPU time: its own (utime+stime) and that of its
// reaped children (cutime+cstime).
func procCPU(pid int) (own, children time.Duration) {
	if pid <= 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	// f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
	return time.Duration(n(11)+n(12)) * time.Second / clkTck, time.Duration(n(13)+n(14)) * time.Second / clkTck
}

// machineBusy is the machine's non-idle CPU time (/proc/stat).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}

// cpuacctUsage is a cpuacct group's total CPU time (0 if it does not exist).
func cpuacctUsage(rel string) time.Duration {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", rel, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(n)
}

// selfCPU is this process's CPU and that of its reaped children (runc).
func selfCPU() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// nodeCPUSnap is the CPU used so far by the node's parts and the masters.
type nodeCPUSnap struct {
	agent    time.Duration // the agent and its reaped children (CNI plugins, iptables, the shims' fork step)
	agentOwn time.Duration // the agent alone
	shims    time.Duration // live shims
	ctrs     time.Duration // the node's container cgroups (libcontainer's init, then the containers)
	masters  time.Duration
	runcCtrs time.Duration // runc's containers' cgroups
	self     time.Duration // this process and its reaped children (runc)
}

func (s nodeCPUSnap) node() time.Duration { return s.agent + s.shims + s.ctrs }

func (b *bench) nodeCPU() nodeCPUSnap {
	var s nodeCPUSnap
	own, kids := procCPU(b.agent.pid())
	s.agent, s.agentOwn = own+kids, own
	for _, pid := range shimPids() {
		o, k := procCPU(pid)
		s.shims += o + k
	}
	s.ctrs = cpuacctUsage("drover/" + nodeName)
	for _, m := range b.masters {
		o, k := procCPU(m.pid())
		s.masters += o + k
	}
	s.runcCtrs = cpuacctUsage(strings.TrimPrefix(runcCgroup, "/"))
	s.self = selfCPU()
	return s
}

// cpuPerPod is CPU time per pod (or runc container) started in a burst,
// from before the first create to the last one Running.
type cpuPerPod struct {
	Pods        int     `json:"pods"`
	NodeMs      float64 `json:"nodeMs"`      // drover: agent + its children + shims + container cgroups; runc: runc processes + container cgroups
	AgentMs     float64 `json:"agentMs"`     // drover: the agent and its reaped children
	AgentOwnMs  float64 `json:"agentOwnMs"`  // drover: the agent process alone
	ShimsInitMs float64 `json:"shimsInitMs"` // drover: the shims and the container cgroups (libcontainer's init, then the container)
	MastersMs   float64 `json:"mastersMs"`   // the masters (API, scheduler, status writes, events)
}

// Window is one measured block and the CPU around it.
type Window struct {
	Side       string  `json:"side"` // drover or runc
	What       string  `json:"what"`
	Rep        int     `json:"rep"`
	Seconds    float64 `json:"seconds"`
	OursCores  float64 `json:"oursCores"`  // this program and everything it started
	OtherCores float64 `json:"otherCores"` // the rest of the machine (other people's jobs, kernel threads)

	at   time.Time
	busy time.Duration
	ours time.Duration
}

// ours is the CPU used so far by this program and everything it started:
// its cpuacct group plus the container cgroups (containers are moved out
// of it), or, without the group, the processes summed.
func (b *bench) ours() time.Duration {
	ctrs := cpuacctUsage("drover/"+nodeName) + cpuacctUsage(strings.TrimPrefix(runcCgroup, "/"))
	if b.acct {
		return cpuacctUsage(filepath.Base(acctCgroup)) + ctrs
	}
	s := b.nodeCPU()
	return s.agent + s.shims + s.masters + s.self + ctrs
}

func (b *bench) beginWindow(side, what string, rep int) *Window {
	return &Window{Side: side, What: what, Rep: rep, at: time.Now(), busy: machineBusy(), ours: b.ours()}
}

func (b *bench) endWindow(w *Window, r *repResult) {
	now, busy, ours := time.Now(), machineBusy(), b.ours()
	w.Seconds = now.Sub(w.at).Seconds()
	if w.Seconds > 0 {
		w.OursCores = (ours - w.ours).Seconds() / w.Seconds
		other := (busy - w.busy - (ours - w.ours)).Seconds()
		w.OtherCores = max(other, 0) / w.Seconds
	}
	r.Windows = append(r.Windows, w)
}

// memSnap is the node's memory with some number of pods running.
type memSnap struct {
	Pods       int     `json:"pods"`
	AgentRSSMB float64 `json:"agentRssMB"`
	AgentAnon  float64 `json:"agentAnonMB"`
	AgentPSSMB float64 `json:"agentPssMB"`
	AgentHWMMB float64 `json:"agentPeakRssMB"`
	Shims      int     `json:"shims"`
	ShimRSSMB  float64 `json:"shimsRssMB"`  // summed (counts shared pages of the drover binary once per shim)
	ShimPSSMB  float64 `json:"shimsPssMB"`  // summed proportional set size: shared pages split among sharers
	ShimAnonMB float64 `json:"shimsAnonMB"` // summed private anonymous memory
	CtrMemMB   float64 `json:"containersMemMB"`
	MastersMB  float64 `json:"mastersRssMB"` // summed
}

func (b *bench) memSnapshot(pods int) *memSnap {
	m := &memSnap{Pods: pods}
	st := procStatus(b.agent.pid())
	m.AgentRSSMB, m.AgentAnon, m.AgentHWMMB = mb(st["VmRSS"]), mb(st["RssAnon"]), mb(st["VmHWM"])
	m.AgentPSSMB = mb(pss(b.agent.pid()))
	for _, pid := range shimPids() {
		st := procStatus(pid)
		m.Shims++
		m.ShimRSSMB += mb(st["VmRSS"])
		m.ShimAnonMB += mb(st["RssAnon"])
		m.ShimPSSMB += mb(pss(pid))
	}
	if raw, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory/drover", nodeName, "memory.usage_in_bytes")); err == nil {
		n, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		m.CtrMemMB = float64(n) / (1 << 20)
	}
	for _, p := range b.masters {
		m.MastersMB += mb(procStatus(p.pid())["VmRSS"])
	}
	return m
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// procStatus is /proc/<pid>/status's kB fields.
func procStatus(pid int) map[string]int64 {
	out := map[string]int64{}
	if pid <= 0 {
		return out
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		out[k] = n
	}
	return out
}

// pss is a process's proportional set size in kB.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
