package main

import (
	"fmt"
	"os/exec"
	"time"
)

// repResult is one repetition: both sides, in the order given.
type repResult struct {
	Rep   int    `json:"rep"`
	Order string `json:"order"`

	Single   []*podSample   `json:"single"`
	Bursts   [][]*podSample `json:"bursts"`
	BurstAll []float64      `json:"burstAllRunningMs"` // create of the first -> last Running observed
	BurstCPU []*cpuPerPod   `json:"burstCpu"`
	Mem      []*memSnap     `json:"memWithBurstRunning"`

	RuncSingle   []float64    `json:"runcSingleMs"`
	RuncBursts   [][]float64  `json:"runcBurstMs"`
	RuncBurstAll []float64    `json:"runcBurstAllStartedMs"`
	RuncBurstCPU []*cpuPerPod `json:"runcBurstCpu"`
	RuncTrue     []float64    `json:"runcTrueMs"`
	ExecDrover   []float64    `json:"execDroverHelpMs"`
	ExecRunc     []float64    `json:"execRuncHelpMs"`

	Windows []*Window `json:"windows"`
	Errors  []string  `json:"errors,omitempty"`
}

func (b *bench) measure() error {
	cfg := b.cfg

	// Warm-up, untimed: the first pod creates the bridge, the first runs
	// fault in the binaries.
	logf("warm-up: one pod, then runc...")
	for i := 1; i <= 2; i++ {
		w := b.singlePod(0, "warmup", i)
		if w.Err != "" {
			return fmt.Errorf("the warm-up pod failed: %s\nagent log (%s):\n%s", w.Err, b.agent.logPath, tail(b.agent.logPath, 4000))
		}
	}
	if _, errs := b.runcSingle(0, 2, 0); len(errs) > 0 {
		return fmt.Errorf("runc warm-up: %s", errs[0])
	}
	if _, errs := b.runcTrue(0, 2); len(errs) > 0 {
		return fmt.Errorf("runc warm-up: %s", errs[0])
	}
	time.Sleep(time.Second)
	b.idleMem = b.memSnapshot(0)

	for rep := 1; rep <= cfg.reps; rep++ {
		r := &repResult{Rep: rep}
		sides := []string{"drover", "runc"}
		if rep%2 == 0 {
			sides = []string{"runc", "drover"}
		}
		r.Order = sides[0] + " then " + sides[1]
		for _, side := range sides {
			if side == "drover" {
				b.droverBlock(r)
			} else {
				b.runcBlock(r)
			}
			time.Sleep(time.Second)
		}
		b.reps = append(b.reps, r)
		if !b.agent.running() {
			return fmt.Errorf("the agent exited during repetition %d (log %s):\n%s", rep, b.agent.logPath, tail(b.agent.logPath, 3000))
		}
		for _, m := range b.masters {
			if !m.running() {
				return fmt.Errorf("%s exited during repetition %d (log %s)", m.name, rep, m.logPath)
			}
		}
	}
	return nil
}

func (b *bench) droverBlock(r *repResult) {
	cfg := b.cfg
	logf("rep %d: drover, %d single pods...", r.Rep, cfg.single)
	w := b.beginWindow("drover", fmt.Sprintf("%d single pods", cfg.single), r.Rep)
	for i := 1; i <= cfg.single; i++ {
		s := b.singlePod(r.Rep, "single", i)
		r.Single = append(r.Single, s)
		if s.Err != "" {
			r.Errors = append(r.Errors, s.Name+": "+s.Err)
		}
		time.Sleep(cfg.gap)
	}
	b.enrich(r.Single)
	b.endWindow(w, r)
	logf("rep %d: drover, single pods p50 %.0f ms", r.Rep, pct(totals(r.Single), 0.5))
	for k := 1; k <= cfg.bursts; k++ {
		time.Sleep(time.Second)
		logf("rep %d: drover, burst %d of %d pods...", r.Rep, k, cfg.burst)
		w := b.beginWindow("drover", fmt.Sprintf("burst of %d pods", cfg.burst), r.Rep)
		samples, all, cpu, mem := b.burstPods(r.Rep, k, cfg.burst)
		b.enrich(samples)
		b.endWindow(w, r)
		r.Bursts = append(r.Bursts, samples)
		r.BurstAll = append(r.BurstAll, all)
		r.BurstCPU = append(r.BurstCPU, cpu)
		r.Mem = append(r.Mem, mem)
		for _, s := range samples {
			if s.Err != "" {
				r.Errors = append(r.Errors, s.Name+": "+s.Err)
			}
		}
		logf("rep %d: drover, burst p50 %.0f ms, p99 %.0f ms, all Running after %.0f ms", r.Rep, pct(totals(samples), 0.5), pct(totals(samples), 0.99), all)
	}
}

func (b *bench) runcBlock(r *repResult) {
	cfg := b.cfg
	logf("rep %d: runc, %d single containers...", r.Rep, cfg.single)
	w := b.beginWindow("runc", fmt.Sprintf("%d single containers", cfg.single), r.Rep)
	var errs []string
	r.RuncSingle, errs = b.runcSingle(r.Rep, cfg.single, cfg.gap)
	r.Errors = append(r.Errors, errs...)
	b.endWindow(w, r)
	for k := 1; k <= cfg.bursts; k++ {
		time.Sleep(time.Second)
		w := b.beginWindow("runc", fmt.Sprintf("burst of %d containers", cfg.burst), r.Rep)
		out, all, cpu, errs := b.runcBurst(r.Rep, k, cfg.burst)
		b.endWindow(w, r)
		r.RuncBursts = append(r.RuncBursts, out)
		r.RuncBurstAll = append(r.RuncBurstAll, all)
		r.RuncBurstCPU = append(r.RuncBurstCPU, cpu)
		r.Errors = append(r.Errors, errs...)
		logf("rep %d: runc, burst p50 %.0f ms, p99 %.0f ms, all started after %.0f ms", r.Rep, pct(out, 0.5), pct(out, 0.99), all)
	}
	if cfg.runcTrue > 0 {
		w := b.beginWindow("runc", fmt.Sprintf("%d runs of /bin/true", cfg.runcTrue), r.Rep)
		r.RuncTrue, errs = b.runcTrue(r.Rep, cfg.runcTrue)
		r.Errors = append(r.Errors, errs...)
		b.endWindow(w, r)
	}
	// What one exec of each binary costs (the shim path execs drover three
	// times per container, runc runs execs runc twice): `--help` to exit,
	// alternating.
	for i := 0; i < 10; i++ {
		for _, bin := range []string{b.bin, b.runc.bin} {
			cmd := exec.Command(bin, "--help")
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("%s --help: %v", bin, err))
				continue
			}
			if bin == b.bin {
				r.ExecDrover = append(r.ExecDrover, ms(time.Since(t0)))
			} else {
				r.ExecRunc = append(r.ExecRunc, ms(time.Since(t0)))
			}
		}
	}
}
