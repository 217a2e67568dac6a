package hollow

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/droverhq/drover/node/runtime"
	"github.com/droverhq/drover/node/runtime/runtimetest"
)

// Args turns a suite behaviour into hollow's words.
func args(b runtimetest.Behavior) []string {
	a := []string{"app"}
	if b.Exits {
		a = append(a, "exit", strconv.Itoa(b.ExitCode), "after", b.After.String())
	}
	if b.IgnoreTERM {
		a = append(a, "ignore-term")
	}
	return a
}

func harness() runtimetest.Harness {
	return runtimetest.Harness{
		New:    func(t *testing.T) runtime.Runtime { return New(Config{}) },
		Reopen: func(t *testing.T, rt runtime.Runtime) runtime.Runtime { return rt },
		Spec: func(t *testing.T, id string, b runtimetest.Behavior) *runtime.Spec {
			return &runtime.Spec{ID: id, Args: args(b), Resources: runtime.Resources{MemoryLimit: 64 << 20}}
		},
		ExecArgs: func(out string, code int) []string { return []string{fmt.Sprintf("echo %s; exit %d", out, code)} },
	}
}

func TestContract(t *testing.T) { runtimetest.Run(t, harness()) }

func TestParseProgram(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want program
	}{
		{[]string{"nginx", "-g", "daemon off;"}, program{}},
		{[]string{"sleep", "10"}, program{}},
		{[]string{"exit", "3"}, program{exits: true, code: 3}},
		{[]string{"app", "exit", "1", "after", "30s"}, program{exits: true, code: 1, after: 30 * time.Second}},
		{[]string{"after", "2m", "exit", "0"}, program{exits: true, after: 2 * time.Minute}},
		{[]string{"oom", "after", "1s"}, program{exits: true, oom: true, code: 137, after: time.Second}},
		{[]string{"ignore-term"}, program{ignoreTERM: true}},
		{[]string{"exit", "x"}, program{}},
		{[]string{"exit", "256"}, program{exits: true, code: 0}},
		{[]string{"after", "-1s"}, program{}},
		{[]string{"exit"}, program{}},
	} {
		if got := parseProgram(tc.args); got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestFakeClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(Config{Clock: clk})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Start(ctx, &runtime.Spec{ID: "a", Args: []string{"oom", "after", "1h"}}))
	must(r.Start(ctx, &runtime.Spec{ID: "b", Args: []string{"ignore-term"}}))
	clk.Step(59 * time.Minute)
	if st, _ := r.Status(ctx, "a"); st.State != runtime.StateRunning {
		t.Fatalf("exited early: %+v", st)
	}
	clk.Step(time.Minute)
	st, _ := r.Status(ctx, "a")
	if st.State != runtime.StateExited || st.ExitCode != 137 || st.Reason != "OOMKilled" || st.FinishedAt.Sub(st.StartedAt) != time.Hour {
		t.Fatalf("after the hour: %+v", st)
	}
	if s, err := r.Stats(ctx, "b"); err != nil || s.CPUNanoseconds != uint64(time.Hour/100) || s.MemoryBytes != 4<<20 {
		t.Errorf("stats: %+v, %v", s, err)
	}

	// Stop waits for the grace on the fake clock.
	done := make(chan error, 1)
	go func() { done <- r.Stop(ctx, "b", 30*time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("Stop never waited on the clock")
		}
		goruntime.Gosched()
	}
	select {
	case err := <-done:
		t.Fatalf("stop returned before the grace: %v", err)
	default:
	}
	clk.Step(30 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Status(ctx, "b"); st.ExitCode != 137 || st.FinishedAt.Sub(st.StartedAt) != time.Hour+30*time.Second {
		t.Errorf("stopped: %+v", st)
	}
}

// TestScale puts 1,000 nodes of 30 containers in one process and checks
// that it is cheap: memory per container and time per operation.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const nodes, perNode = 1000, 30
	ctx := context.Background()
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	t0 := time.Now()
	rts := make([]*Runtime, nodes)
	for n := range rts {
		rts[n] = New(Config{})
		for i := range perNode {
			spec := &runtime.Spec{
				ID:     fmt.Sprintf("pod-%04d-%02d_web_0", n, i),
				Labels: map[string]string{"io.kubernetes.pod.uid": "0d3f6ab2-8a3c-4c7e-9d2b-1b1e6a4f3c2d", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.name": fmt.Sprintf("web-%d", i), "io.kubernetes.container.name": "web"},
				Args:   []string{"nginx", "-g", "daemon off;"},
				Env:    []string{"PATH=/usr/bin:/bin"},
			}
			if err := rts[n].Start(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	startTook := time.Since(t0)
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	perCtr := float64(after.HeapAlloc-before.HeapAlloc) / (nodes * perNode)
	t1 := time.Now()
	total := 0
	for _, r := range rts {
		l, _ := r.List(ctx)
		total += len(l)
	}
	listTook := time.Since(t1)
	if total != nodes*perNode {
		t.Fatalf("listed %d", total)
	}
	t.Logf("%d containers: started in %v (%v each), %.0f bytes of heap each, listing all took %v",
		total, startTook, startTook/time.Duration(total), perCtr, listTook)
	if perCtr > 4096 {
		t.Errorf("%.0f bytes per container; the budget is 4 KiB", perCtr)
	}
	goruntime.KeepAlive(rts)
}
