package lincheck

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestModelCatchesAnomalies makes sure the model and the revision checks
// reject what they are meant to, so a passing fault test means something.
func TestModelCatchesAnomalies(t *testing.T) {
	type op struct {
		Op
		how Outcome
	}
	put := func(call, ret int64, key, val string, rev int64) op {
		return op{Op{Call: call, Return: ret, Input: Input{Kind: Put, Key: key, Value: val}, Output: Output{Rev: rev, StoreRev: rev}}, Done}
	}
	get := func(call, ret int64, key, val string, rev, storeRev int64) op {
		return op{Op{Call: call, Return: ret, Input: Input{Kind: Get, Key: key}, Output: Output{Present: val != "", Value: val, Rev: rev, StoreRev: storeRev}}, Done}
	}
	unknownPut := func(call int64, key, val string) op {
		return op{Op{Call: call, Return: call + 1, Input: Input{Kind: Put, Key: key, Value: val}}, Indeterminate}
	}
	cas := func(call, ret int64, key, val, expVal string, expRev int64, out Output) op {
		return op{Op{Call: call, Return: ret, Input: Input{Kind: CAS, Key: key, Value: val, ExpVal: expVal, ExpRev: expRev}, Output: out}, Done}
	}
	del := func(call, ret int64, key string, rev int64) op {
		return op{Op{Call: call, Return: ret, Input: Input{Kind: Delete, Key: key}, Output: Output{OK: true, Rev: rev, StoreRev: rev}}, Done}
	}
	for _, tc := range []struct {
		name  string
		ops   []op
		model bool // porcupine accepts it
		cross bool // CheckRevisions accepts it
	}{
		{"sequential", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v1", 1, 1), put(5, 6, "a", "v2", 2), get(7, 8, "a", "v2", 2, 2)}, true, true},
		{"stale read", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), get(5, 6, "a", "v1", 1, 2)}, false, true},
		{"read of a value never written", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v9", 2, 2)}, false, true},
		{"indeterminate put seen", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(5, 6, "a", "v2", 2, 2)}, true, true},
		{"indeterminate put not seen", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(5, 6, "a", "v1", 1, 1)}, true, true},
		{"indeterminate put seen, then lost", []op{unknownPut(1, "a", "v2"), get(3, 4, "a", "v2", 1, 1), get(5, 6, "a", "", 0, 1)}, false, true},
		{"write applied twice", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), get(5, 6, "a", "v1", 3, 3)}, false, false},
		{"mod revision changed under a value", []op{put(1, 2, "a", "v1", 1), get(3, 4, "a", "v1", 2, 2)}, false, false},
		{"cas on the current revision", []op{put(1, 2, "a", "v1", 1), cas(3, 4, "a", "v2", "v1", 1, Output{OK: true, Rev: 2, StoreRev: 2}), get(5, 6, "a", "v2", 2, 2)}, true, true},
		{"cas swapped a stale revision", []op{put(1, 2, "a", "v1", 1), put(3, 4, "a", "v2", 2), cas(5, 6, "a", "v3", "v1", 1, Output{OK: true, Rev: 3, StoreRev: 3})}, false, true},
		{"cas failed on the current revision", []op{put(1, 2, "a", "v1", 1), cas(3, 4, "a", "v2", "v1", 1, Output{Present: true, Value: "v1", Rev: 1, StoreRev: 1})}, false, true},
		{"two writes at one revision", []op{put(1, 2, "a", "v1", 1), put(3, 4, "b", "w1", 1)}, true, false},
		{"store revision went back", []op{put(1, 2, "a", "v1", 1), put(3, 4, "b", "w1", 2), get(5, 6, "a", "v1", 1, 1)}, true, false},
		{"concurrent reads may differ", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(4, 10, "a", "v2", 2, 2), get(5, 9, "a", "v1", 1, 1)}, true, true},
		{"later read older than an earlier one", []op{put(1, 2, "a", "v1", 1), unknownPut(3, "a", "v2"), get(4, 5, "a", "v2", 2, 2), get(6, 7, "a", "v1", 1, 1)}, false, false},
		{"delete then read absent", []op{put(1, 2, "a", "v1", 1), del(3, 4, "a", 2), get(5, 6, "a", "", 0, 2)}, true, true},
		{"read of a deleted value", []op{put(1, 2, "a", "v1", 1), del(3, 4, "a", 2), get(5, 6, "a", "v1", 1, 2)}, false, true},
		{"delete at a write's revision", []op{put(1, 2, "a", "v1", 1), put(3, 4, "b", "w1", 2), del(5, 6, "a", 2)}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for i, o := range tc.ops {
				o.Client = i
				h.Add(o.Op, o.how)
			}
			ops := h.Operations()
			if got := porcupine.CheckOperations(Model(), ops); got != tc.model {
				t.Errorf("porcupine says linearizable=%v, want %v", got, tc.model)
			}
			if errs := CheckRevisions(ops); (len(errs) == 0) != tc.cross {
				t.Errorf("revision checks: %v, want ok=%v", errs, tc.cross)
			}
			res, problems := h.Check(10 * time.Second)
			if want := tc.model && tc.cross; (res == porcupine.Ok && len(problems) == 0) != want {
				t.Errorf("Check: %s, %v; want ok=%v", res, problems, want)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	h := NewHistory()
	h.Add(Op{Client: 0, Call: 1, Return: 2, Input: Input{Kind: Put, Key: "a", Value: "v1"}, Output: Output{Rev: 1, StoreRev: 1}}, Done)
	h.Add(Op{Client: 1, Call: 3, Return: 4, Input: Input{Kind: Get, Key: "a"}}, Indeterminate) // dropped
	h.Add(Op{Client: 1, Call: 3, Return: 4, Input: Input{Kind: Put, Key: "a", Value: "v2"}, Note: "via m2"}, NotApplied)
	h.Add(Op{Client: 2, Call: 5, Return: 6, Input: Input{Kind: Put, Key: "b", Value: "v3"}, Output: Output{Rev: 99}}, Indeterminate)
	if h.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (the failed read and the not-applied write left out)", h.Len())
	}
	ops := h.Operations()
	if out := ops[1].Output.(Output); !out.Unknown || ops[1].Return <= 6 {
		t.Errorf("indeterminate write: output %+v, return %d; want unknown, returning after everything", out, ops[1].Return)
	}
	if res, problems := h.Check(10 * time.Second); res != porcupine.Ok || len(problems) != 0 {
		t.Errorf("Check: %s, %v; want ok", res, problems)
	}

	// A read of the not-applied write's value.
	h.Add(Op{Client: 3, Call: 7, Return: 8, Input: Input{Kind: Get, Key: "a"}, Output: Output{Present: true, Value: "v2", Rev: 2, StoreRev: 2}, Note: "via m3"}, Done)
	res, problems := h.Check(10 * time.Second)
	if res != porcupine.Illegal {
		t.Errorf("porcupine: %s, want Illegal", res)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "not applied") || !strings.Contains(problems[0], "[via m3]") {
		t.Errorf("problems %q, want one naming the read of v2 via m3", problems)
	}

	path := t.TempDir() + "/h.html"
	if err := h.WriteVisualization(path, 10*time.Second, []porcupine.Annotation{{Tag: "nemesis", Start: 3, End: 5, Description: "cut"}}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentClients records from many goroutines (run with -race).
func TestConcurrentClients(t *testing.T) {
	h := NewHistory()
	var wg sync.WaitGroup
	const clients, each = 8, 50
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := h.NewClient()
			key := "k" + h.NewValue()
			for i := range each {
				op := Op{Client: id, Input: Input{Kind: Put, Key: key, Value: h.NewValue()}, Call: h.Now()}
				op.Output = Output{Rev: int64(i + 1), StoreRev: int64(i + 1)}
				op.Return = h.Now()
				h.Add(op, Done)
			}
		}()
	}
	wg.Wait()
	if h.Len() != clients*each {
		t.Fatalf("Len = %d, want %d", h.Len(), clients*each)
	}
	// Every key on its own revision line: the model accepts; the revisions
	// repeat across keys, which CheckRevisions must report.
	if res, problems := h.Check(10 * time.Second); res != porcupine.Ok || len(problems) == 0 {
		t.Errorf("Check: %s, %d problems; want Ok and revision problems", res, len(problems))
	}
}
