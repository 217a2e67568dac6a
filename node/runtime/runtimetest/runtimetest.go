// Package runtimetest is the behavioural contract of runtime.Runtime: one
// suite that every implementation (lcrun on a real node, hollow in memory)
// runs through a Harness, so they agree on states, exit codes, reasons and
// errors.
package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/droverhq/drover/node/runtime"
)

// Behavior is what a test container does. A harness turns it into a Spec
// its runtime understands.
type Behavior struct {
	// Exits makes the container exit by itself with ExitCode, After
	// after it started; otherwise it runs until stopped.
	Exits    bool
	ExitCode int
	After    time.Duration
	// IgnoreTERM makes the container ignore SIGTERM; otherwise SIGTERM
	// makes it exit with 143 (128+SIGTERM) at once.
	IgnoreTERM bool
}

// RunsUntilStopped is a container that exits 143 on SIGTERM.
func RunsUntilStopped() Behavior { return Behavior{} }

// ExitsWith is a container that exits with code after d.
func ExitsWith(code int, d time.Duration) Behavior {
	return Behavior{Exits: true, ExitCode: code, After: d}
}

// IgnoresTERM is a container that only SIGKILL stops.
func IgnoresTERM() Behavior { return Behavior{IgnoreTERM: true} }

// Harness adapts one implementation to the suite.
type Harness struct {
	// New returns a new, empty runtime; the harness cleans it up when t
	// ends.
	New func(t *testing.T) runtime.Runtime
	// Reopen returns the runtime a restarted agent would make over the
	// same node as rt (rt is then no longer used).
	Reopen func(t *testing.T, rt runtime.Runtime) runtime.Runtime
	// Spec returns a spec for a container with id that behaves as b.
	Spec func(t *testing.T, id string, b Behavior) *runtime.Spec
	// ExecArgs returns a command that writes out and a newline to stdout
	// and exits with code. The suite also execs the command "cat", which
	// must copy stdin to stdout.
	ExecArgs func(out string, code int) []string
	// Ready, if set, waits until a container just started has set itself
	// up as its behaviour says (installed its SIGTERM handler, say): a
	// real process cannot honour a signal that comes before that.
	Ready func(t *testing.T, rt runtime.Runtime, id string)
	// Timeout bounds each wait for a state; zero means 10s.
	Timeout time.Duration
}

func (h *Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 10 * time.Second
}

// Run runs the whole suite as parallel subtests of t.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		f    func(*testing.T, *Harness)
	}{
		{"StartStatusList", testStartStatusList},
		{"ExitCodes", testExitCodes},
		{"Errors", testErrors},
		{"StopTERM", testStopTERM},
		{"StopKILLAfterGrace", testStopKILLAfterGrace},
		{"StopContext", testStopContext},
		{"RemoveAndReuse", testRemoveAndReuse},
		{"Adopt", testAdopt},
		{"Concurrent", testConcurrent},
		{"Exec", testExec},
		{"Stats", testStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, &h)
		})
	}
}

// WaitState polls until id is in state want and returns its status, or
// fails t after timeout.
func WaitState(t testing.TB, rt runtime.Runtime, id string, want runtime.State, timeout time.Duration) *runtime.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *runtime.Status
	var lastErr error
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		st, err := rt.Status(context.Background(), id)
		if err == nil && st.State == want {
			return st
		}
		last, lastErr = st, err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s after %v: last status %+v, err %v", id, want, timeout, last, lastErr)
		}
		time.Sleep(delay) // polling interval, not a wait for the condition
	}
}

func start(t *testing.T, h *Harness, rt runtime.Runtime, id string, b Behavior) *runtime.Spec {
	t.Helper()
	spec := h.Spec(t, id, b)
	if err := rt.Start(context.Background(), spec); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	if h.Ready != nil {
		h.Ready(t, rt, id)
	}
	return spec
}

func testStartStatusList(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	before := time.Now()
	spec := h.Spec(t, "c1", RunsUntilStopped())
	spec.Labels = map[string]string{"pod": "p1", "container": "web"}
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if h.Ready != nil {
		h.Ready(t, rt, "c1")
	}
	spec.Labels["pod"] = "changed after start" // the runtime keeps its own copy
	st, err := rt.Status(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "c1" || st.State != runtime.StateRunning || st.Pid <= 0 {
		t.Fatalf("status after start: %+v", st)
	}
	if st.Labels["pod"] != "p1" || st.Labels["container"] != "web" || len(st.Labels) != 2 {
		t.Errorf("labels: %v", st.Labels)
	}
	slack := time.Second // timestamps may come from another process's clock reading
	if st.CreatedAt.Before(before.Add(-slack)) || st.StartedAt.Before(st.CreatedAt) || st.StartedAt.After(time.Now().Add(slack)) {
		t.Errorf("times: created %v started %v (test began %v)", st.CreatedAt, st.StartedAt, before)
	}
	if !st.FinishedAt.IsZero() {
		t.Errorf("running container has FinishedAt %v", st.FinishedAt)
	}
	start(t, h, rt, "c2", ExitsWith(0, 0))
	WaitState(t, rt, "c2", runtime.StateExited, h.timeout())
	list, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]runtime.State{}
	for _, s := range list {
		states[s.ID] = s.State
	}
	if len(states) != 2 || states["c1"] != runtime.StateRunning || states["c2"] != runtime.StateExited {
		t.Errorf("list: %v", states)
	}
	if err := rt.Stop(ctx, "c1", time.Second); err != nil {
		t.Fatal(err)
	}
}

func testExitCodes(t *testing.T, h *Harness) {
	rt := h.New(t)
	for _, tc := range []struct {
		code   int
		reason string
	}{{0, "Completed"}, {3, "Error"}, {255, "Error"}} {
		id := fmt.Sprintf("exit-%d", tc.code)
		start(t, h, rt, id, ExitsWith(tc.code, 50*time.Millisecond))
		st := WaitState(t, rt, id, runtime.StateExited, h.timeout())
		if st.ExitCode != tc.code || st.Reason != tc.reason {
			t.Errorf("%s: exit %d reason %q, want %d %q", id, st.ExitCode, st.Reason, tc.code, tc.reason)
		}
		if st.FinishedAt.Before(st.StartedAt) || st.StartedAt.IsZero() {
			t.Errorf("%s: started %v finished %v", id, st.StartedAt, st.FinishedAt)
		}
		if st.Pid != 0 {
			t.Errorf("%s: exited container reports pid %d", id, st.Pid)
		}
		// An exited container stays, with the same record, until removed.
		again, err := rt.Status(context.Background(), id)
		if err != nil || again.ExitCode != st.ExitCode || !again.FinishedAt.Equal(st.FinishedAt) {
			t.Errorf("%s: second status %+v, %v", id, again, err)
		}
	}
}

func testErrors(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	if _, err := rt.Status(ctx, "nope"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status of unknown: %v", err)
	}
	if err := rt.Stop(ctx, "nope", time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stop of unknown: %v", err)
	}
	if err := rt.Remove(ctx, "nope"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("remove of unknown: %v", err)
	}
	for _, bad := range []func(*runtime.Spec){
		func(s *runtime.Spec) { s.ID = "" },
		func(s *runtime.Spec) { s.ID = "../escape" },
		func(s *runtime.Spec) { s.ID = ".hidden" },
		func(s *runtime.Spec) { s.Args = nil },
	} {
		spec := h.Spec(t, "bad", RunsUntilStopped())
		bad(spec)
		if err := rt.Start(ctx, spec); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("start of invalid spec %q %q: %v", spec.ID, spec.Args, err)
		}
	}
	if list, err := rt.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after failed starts: %d, %v", len(list), err)
	}

	start(t, h, rt, "dup", RunsUntilStopped())
	if err := rt.Start(ctx, h.Spec(t, "dup", RunsUntilStopped())); !errors.Is(err, runtime.ErrExists) {
		t.Errorf("second start of running: %v", err)
	}
	if err := rt.Remove(ctx, "dup"); !errors.Is(err, runtime.ErrRunning) {
		t.Errorf("remove of running: %v", err)
	}
	if err := rt.Stop(ctx, "dup", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, h.Spec(t, "dup", RunsUntilStopped())); !errors.Is(err, runtime.ErrExists) {
		t.Errorf("start of exited, not removed: %v", err)
	}
}

func testStopTERM(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	start(t, h, rt, "term", RunsUntilStopped())
	t0 := time.Now()
	if err := rt.Stop(ctx, "term", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	st, err := rt.Status(ctx, "term")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.StateExited || st.ExitCode != 143 || st.Reason != "Error" {
		t.Errorf("after stop: %+v", st)
	}
	if took > 10*time.Second {
		t.Errorf("stop of a TERM-handling container took %v", took)
	}
	t.Logf("stop (SIGTERM handled) took %v", took)
	// Stopping with no grace is SIGKILL at once, even for a container
	// that would have handled SIGTERM.
	start(t, h, rt, "term-now", RunsUntilStopped())
	if err := rt.Stop(ctx, "term-now", 0); err != nil {
		t.Fatal(err)
	}
	if st, err := rt.Status(ctx, "term-now"); err != nil || st.ExitCode != 137 {
		t.Errorf("stop with no grace: %+v, %v", st, err)
	}
	// Stopping again is a no-op and keeps the record.
	if err := rt.Stop(ctx, "term", time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
	again, _ := rt.Status(ctx, "term")
	if again.ExitCode != 143 || !again.FinishedAt.Equal(st.FinishedAt) {
		t.Errorf("second stop changed the record: %+v", again)
	}
}

func testStopKILLAfterGrace(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	start(t, h, rt, "stubborn", IgnoresTERM())
	grace := 300 * time.Millisecond
	t0 := time.Now()
	if err := rt.Stop(ctx, "stubborn", grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	st, err := rt.Status(ctx, "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtime.StateExited || st.ExitCode != 137 || st.Reason != "Error" {
		t.Errorf("after stop: %+v", st)
	}
	if took < grace {
		t.Errorf("SIGKILL came after %v, before the %v grace", took, grace)
	}
	t.Logf("stop (SIGTERM ignored, grace %v) took %v", grace, took)
}

func testStopContext(t *testing.T, h *Harness) {
	rt := h.New(t)
	start(t, h, rt, "slow", IgnoresTERM())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := rt.Stop(ctx, "slow", time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stop with a short context and a long grace: %v", err)
	}
	st, err := rt.Status(context.Background(), "slow")
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("after the cut-short stop: %+v, %v", st, err)
	}
	if err := rt.Stop(context.Background(), "slow", 0); err != nil {
		t.Fatal(err)
	}
	if st := WaitState(t, rt, "slow", runtime.StateExited, h.timeout()); st.ExitCode != 137 {
		t.Errorf("stop with no grace: exit %d", st.ExitCode)
	}
}

func testRemoveAndReuse(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	start(t, h, rt, "r", ExitsWith(7, 0))
	WaitState(t, rt, "r", runtime.StateExited, h.timeout())
	if err := rt.Remove(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Status(ctx, "r"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("status after remove: %v", err)
	}
	if err := rt.Remove(ctx, "r"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if list, _ := rt.List(ctx); len(list) != 0 {
		t.Errorf("list after remove has %d", len(list))
	}
	start(t, h, rt, "r", ExitsWith(9, 0))
	if st := WaitState(t, rt, "r", runtime.StateExited, h.timeout()); st.ExitCode != 9 {
		t.Errorf("reused ID: exit %d, want 9", st.ExitCode)
	}
}

func testAdopt(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	start(t, h, rt, "long", RunsUntilStopped())
	start(t, h, rt, "later", ExitsWith(4, 700*time.Millisecond))
	start(t, h, rt, "done", ExitsWith(0, 0))
	WaitState(t, rt, "done", runtime.StateExited, h.timeout())
	before, err := rt.Status(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}

	rt2 := h.Reopen(t, rt)
	list, err := rt2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*runtime.Status{}
	for _, s := range list {
		got[s.ID] = s
	}
	if len(got) != 3 {
		t.Fatalf("after reopen, list has %d containers: %v", len(got), got)
	}
	if s := got["long"]; s.State != runtime.StateRunning || s.Pid != before.Pid || !s.StartedAt.Equal(before.StartedAt) {
		t.Errorf("adopted container: %+v, before the restart %+v", s, before)
	}
	if s := got["done"]; s.State != runtime.StateExited || s.ExitCode != 0 {
		t.Errorf("container exited before the restart: %+v", s)
	}
	// One that exits after the restart has its exit recorded.
	if st := WaitState(t, rt2, "later", runtime.StateExited, h.timeout()); st.ExitCode != 4 || st.Reason != "Error" {
		t.Errorf("exit after restart: %+v", st)
	}
	if err := rt2.Stop(ctx, "long", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt2.Status(ctx, "long"); st.ExitCode != 143 {
		t.Errorf("adopted container stopped: %+v", st)
	}
	for _, id := range []string{"long", "later", "done"} {
		if err := rt2.Remove(ctx, id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	}
}

func testConcurrent(t *testing.T, h *Harness) {
	rt := h.New(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("par-%d", i)
			if err := rt.Start(ctx, h.Spec(t, id, RunsUntilStopped())); err != nil {
				errs <- fmt.Errorf("start %s: %w", id, err)
			}
		})
	}
	// The same ID from many goroutines: exactly one wins.
	var won sync.Map
	for i := range n {
		wg.Go(func() {
			err := rt.Start(ctx, h.Spec(t, "race", RunsUntilStopped()))
			switch {
			case err == nil:
				won.Store(i, true)
			case !errors.Is(err, runtime.ErrExists):
				errs <- fmt.Errorf("start race: %w", err)
			}
		})
	}
	wg.Wait()
	if h.Ready != nil {
		for i := range n {
			h.Ready(t, rt, fmt.Sprintf("par-%d", i))
		}
		h.Ready(t, rt, "race")
	}
	winners := 0
	won.Range(func(_, _ any) bool { winners++; return true })
	if winners != 1 {
		t.Errorf("%d starts of the same ID succeeded", winners)
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != n+1 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	for _, s := range list {
		wg.Go(func() {
			if err := rt.Stop(ctx, s.ID, 5*time.Second); err != nil {
				errs <- fmt.Errorf("stop %s: %w", s.ID, err)
				return
			}
			if err := rt.Remove(ctx, s.ID); err != nil {
				errs <- fmt.Errorf("remove %s: %w", s.ID, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if list, _ := rt.List(ctx); len(list) != 0 {
		t.Errorf("%d containers left", len(list))
	}
}

func testExec(t *testing.T, h *Harness) {
	rt := h.New(t)
	ex, ok := rt.(runtime.Execer)
	if !ok {
		t.Skip("not an Execer")
	}
	ctx := context.Background()
	if _, err := ex.Exec(ctx, "nope", runtime.ExecOptions{Args: h.ExecArgs("x", 0)}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("exec in unknown: %v", err)
	}
	start(t, h, rt, "ex", RunsUntilStopped())
	if _, err := ex.Exec(ctx, "ex", runtime.ExecOptions{}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("exec with no command: %v", err)
	}
	var out, errb bytes.Buffer
	code, err := ex.Exec(ctx, "ex", runtime.ExecOptions{Args: h.ExecArgs("hello exec", 5), Stdout: &out, Stderr: &errb})
	if err != nil || code != 5 || out.String() != "hello exec\n" {
		t.Errorf("exec: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errb.String())
	}
	out.Reset()
	in := strings.Repeat("line of input\n", 1000)
	code, err = ex.Exec(ctx, "ex", runtime.ExecOptions{Args: []string{"cat"}, Stdin: strings.NewReader(in), Stdout: &out})
	if err != nil || code != 0 || out.String() != in {
		t.Errorf("exec cat: code %d, err %v, %d bytes out of %d", code, err, out.Len(), len(in))
	}
	if err := rt.Stop(ctx, "ex", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Exec(ctx, "ex", runtime.ExecOptions{Args: h.ExecArgs("x", 0)}); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec in exited: %v", err)
	}
}

func testStats(t *testing.T, h *Harness) {
	rt := h.New(t)
	sr, ok := rt.(runtime.StatsReader)
	if !ok {
		t.Skip("not a StatsReader")
	}
	ctx := context.Background()
	if _, err := sr.Stats(ctx, "nope"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stats of unknown: %v", err)
	}
	start(t, h, rt, "st", RunsUntilStopped())
	s, err := sr.Stats(ctx, "st")
	if err != nil || s == nil || s.MemoryBytes == 0 {
		t.Errorf("stats: %+v, %v", s, err)
	}
	if err := rt.Stop(ctx, "st", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := sr.Stats(ctx, "st"); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("stats of exited: %v", err)
	}
}
