// Package lincheck checks histories of a key-value store's clients for
// linearizability: porcupine against a per-key register that tracks mod
// revisions, plus the cross-key revision checks porcupine's per-key
// partitions cannot make. It lives outside any test so that raftstore's
// in-process fault tests and the multi-process e2e partition test hold the
// store to one model.
//
// Values written must be unique, so a read names the write it saw.
package lincheck

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is what an operation does.
type Kind uint8

const (
	Get    Kind = iota // a linearizable read of a key
	Put                // a write
	CAS                // a write if the key's mod revision is Input.ExpRev
	Delete             // a delete of a key
)

var kindNames = [...]string{Get: "get", Put: "put", CAS: "cas", Delete: "delete"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Input is what a client asked.
type Input struct {
	Kind   Kind
	Key    string
	Value  string // put, cas: the new (unique) value
	ExpRev int64  // cas: the expected mod revision; 0 expects the key absent
	ExpVal string // cas: the value the client saw at ExpRev
}

// Output is what it was answered.
type Output struct {
	Unknown bool   // a write whose outcome is indeterminate
	OK      bool   // cas: swapped; delete: deleted the key
	Present bool   // get, failed cas: the key exists
	Value   string // get, failed cas: its value
	// Rev is the write's revision (put, swapped cas, delete that deleted),
	// or the key's mod revision (get, failed cas, when present).
	Rev int64
	// StoreRev is the store revision the response reported.
	StoreRev int64
}

// Describe names an operation, e.g. "cas(k, v7, expect v3@12) -> ok@15".
func Describe(in Input, out Output) string {
	res := "?"
	switch in.Kind {
	case Get:
		if !out.Unknown {
			res = "absent"
			if out.Present {
				res = fmt.Sprintf("%s@%d", out.Value, out.Rev)
			}
		}
		return fmt.Sprintf("get(%s) -> %s", in.Key, res)
	case Put:
		if !out.Unknown {
			res = fmt.Sprintf("@%d", out.Rev)
		}
		return fmt.Sprintf("put(%s, %s) -> %s", in.Key, in.Value, res)
	case CAS:
		exp := "absent"
		if in.ExpRev != 0 {
			exp = fmt.Sprintf("%s@%d", in.ExpVal, in.ExpRev)
		}
		switch {
		case out.Unknown:
		case out.OK:
			res = fmt.Sprintf("ok@%d", out.Rev)
		case out.Present:
			res = fmt.Sprintf("failed, is %s@%d", out.Value, out.Rev)
		default:
			res = "failed, is absent"
		}
		return fmt.Sprintf("cas(%s, %s, expect %s) -> %s", in.Key, in.Value, exp, res)
	case Delete:
		switch {
		case out.Unknown:
		case out.OK:
			res = fmt.Sprintf("deleted@%d", out.Rev)
		default:
			res = "nothing to delete"
		}
		return fmt.Sprintf("delete(%s) -> %s", in.Key, res)
	}
	return "?"
}

// describeOp names a history's operation, with its note, in problems.
func describeOp(op porcupine.Operation) string {
	d := Describe(op.Input.(Input), op.Output.(Output))
	if m, ok := op.Metadata.(string); ok && m != "" {
		d += " [" + m + "]"
	}
	return d
}

// state is one key's register: its value and what is known of its mod
// revision.
type state struct {
	Exists bool
	Value  string
	// Rev is the last write's exact revision when Exact; otherwise a strict
	// lower bound of it (after an indeterminate write).
	Rev   int64
	Exact bool
}

func step(st state, in Input, out Output) (bool, state) {
	// observe checks a read of the key against the state and learns its
	// exact revision.
	observe := func(present bool, val string, rev int64) (bool, state) {
		if !present {
			return !st.Exists, st
		}
		if !st.Exists || st.Value != val {
			return false, st
		}
		if (st.Exact && rev != st.Rev) || (!st.Exact && rev <= st.Rev) {
			return false, st
		}
		return true, state{Exists: true, Value: val, Rev: rev, Exact: true}
	}
	switch in.Kind {
	case Get:
		return observe(out.Present, out.Value, out.Rev)
	case Put:
		if out.Unknown {
			return true, state{Exists: true, Value: in.Value, Rev: st.Rev}
		}
		return out.Rev > st.Rev, state{Exists: true, Value: in.Value, Rev: out.Rev, Exact: true}
	case Delete:
		if out.Unknown {
			if !st.Exists {
				return true, st
			}
			return true, state{Rev: st.Rev}
		}
		if out.OK {
			return st.Exists && out.Rev > st.Rev, state{Rev: out.Rev, Exact: true}
		}
		return !st.Exists, st
	case CAS:
		// Values are unique and (CheckRevisions) each revision is one
		// write, so "mod revision == ExpRev" is "value == ExpVal".
		match := !st.Exists
		floor := st.Rev
		if in.ExpRev != 0 {
			match = st.Exists && st.Value == in.ExpVal &&
				((st.Exact && st.Rev == in.ExpRev) || (!st.Exact && in.ExpRev > st.Rev))
			floor = max(floor, in.ExpRev)
		}
		switch {
		case out.Unknown:
			if !match {
				return true, st
			}
			return true, state{Exists: true, Value: in.Value, Rev: floor}
		case out.OK:
			return match && out.Rev > floor, state{Exists: true, Value: in.Value, Rev: out.Rev, Exact: true}
		}
		if match {
			return false, st
		}
		return observe(out.Present, out.Value, out.Rev)
	}
	return false, st
}

var model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return state{Exact: true} },
	Step: func(st, input, output interface{}) (bool, interface{}) {
		return step(st.(state), input.(Input), output.(Output))
	},
	Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
	DescribeOperation: func(input, output interface{}) string {
		return Describe(input.(Input), output.(Output))
	},
	DescribeOperationMetadata: func(m interface{}) string {
		if s, ok := m.(string); ok {
			return s
		}
		return ""
	},
	DescribeState: func(s interface{}) string {
		st := s.(state)
		rev := fmt.Sprintf("@%d", st.Rev)
		if !st.Exact {
			rev = fmt.Sprintf("@>%d", st.Rev)
		}
		if !st.Exists {
			return "absent" + rev
		}
		return st.Value + rev
	},
}

// Model is the porcupine model: one register per key (it partitions by
// key), with Input and Output as operations' input and output and an
// optional string note as their metadata.
func Model() porcupine.Model { return model }

// CheckRevisions checks what the per-key model cannot: each revision is one
// write (no write applied twice, no two writes at one revision), and the
// store revision clients observe never goes back in real time (a read that
// starts after an operation returned sees at least its revision; a write
// that starts after it gets a later one). It returns the violations, at most
// 20 and a count of the rest; ops with an Unknown output are skipped.
func CheckRevisions(ops []porcupine.Operation) []string {
	var errs []string
	revOf := map[string]int64{}   // key=value -> revision
	writeAt := map[int64]string{} // revision -> key=value or key deleted
	note := func(rev int64, what string, value string, op porcupine.Operation) {
		if value != "" {
			if r, ok := revOf[value]; ok && r != rev {
				errs = append(errs, fmt.Sprintf("%s is seen at revisions %d and %d (%s)", value, r, rev, describeOp(op)))
			}
			revOf[value] = rev
		}
		if w, ok := writeAt[rev]; ok && w != what {
			errs = append(errs, fmt.Sprintf("revision %d is both %s and %s", rev, w, what))
		}
		writeAt[rev] = what
	}
	type timed struct {
		call, ret, rev int64
		write          bool
		op             porcupine.Operation
	}
	var rt []timed
	for _, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if out.Unknown {
			continue
		}
		wrote := in.Kind == Put || (in.Kind == CAS && out.OK) || (in.Kind == Delete && out.OK)
		switch {
		case in.Kind == Delete && out.OK:
			note(out.Rev, in.Key+" deleted", "", op)
		case wrote:
			note(out.Rev, in.Key+"="+in.Value, in.Key+"="+in.Value, op)
		case out.Present:
			note(out.Rev, in.Key+"="+out.Value, in.Key+"="+out.Value, op)
		}
		if out.Present && out.StoreRev < out.Rev {
			errs = append(errs, fmt.Sprintf("store revision %d is older than the key's mod revision: %s", out.StoreRev, describeOp(op)))
		}
		rt = append(rt, timed{call: op.Call, ret: op.Return, rev: out.StoreRev, write: wrote, op: op})
	}
	byRet := append([]timed(nil), rt...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	sort.Slice(rt, func(i, j int) bool { return rt[i].call < rt[j].call })
	j := 0
	var best timed
	for _, b := range rt {
		for j < len(byRet) && byRet[j].ret < b.call {
			if byRet[j].rev > best.rev {
				best = byRet[j]
			}
			j++
		}
		if b.rev < best.rev || (b.write && b.rev == best.rev) {
			errs = append(errs, fmt.Sprintf("revision went back in real time: %q (returned at %v) shows store revision %d, but %q (called at %v, later) shows %d",
				describeOp(best.op), time.Duration(best.ret), best.rev, describeOp(b.op), time.Duration(b.call), b.rev))
		}
	}
	if len(errs) > 20 {
		errs = append(errs[:20], fmt.Sprintf("... and %d more", len(errs)-20))
	}
	return errs
}

// Outcome is what a client learnt of an operation.
type Outcome uint8

const (
	// Done: the operation returned Op.Output.
	Done Outcome = iota
	// Indeterminate: it failed and may or may not have taken effect. A
	// write stays in the history open to its end (it may apply at any time
	// after its call); a read tells nothing and is dropped.
	Indeterminate
	// NotApplied: a write failed with the store's promise that it did not
	// take effect. It is left out of the history, and a read of its value
	// is a problem.
	NotApplied
)

// Op is one operation of a client.
type Op struct {
	Client int // porcupine client id; see History.NewClient
	Input  Input
	Output Output // for Done
	Call   int64  // History.Now when it was sent
	Return int64  // History.Now when it returned
	// Note is shown with the op in problems and the visualization: the
	// member it went through, the error it got.
	Note string
}

// History records the operations of concurrent clients against one clock.
type History struct {
	start   time.Time
	clients atomic.Int64
	values  atomic.Int64

	mu         sync.Mutex
	ops        []Op
	notApplied []Op
}

// NewHistory starts a history's clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Start is when the clock started: Now counts from it.
func (h *History) Start() time.Time { return h.start }

// Now is the time for Op.Call and Op.Return: nanoseconds since Start, plus
// one so that no time is 0.
func (h *History) Now() int64 { return int64(time.Since(h.start)) + 1 }

// NewClient returns a client id not used before. A client should take a
// new one after an indeterminate operation, which stays open to the end of
// the history.
func (h *History) NewClient() int { return int(h.clients.Add(1) - 1) }

// NewValue returns a value no write has used: v1, v2, ...
func (h *History) NewValue() string { return fmt.Sprintf("v%d", h.values.Add(1)) }

// Add records an operation and what its client learnt of it.
func (h *History) Add(op Op, o Outcome) {
	if o != Done && op.Input.Kind == Get {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch o {
	case Done:
		h.ops = append(h.ops, op)
	case Indeterminate:
		op.Output = Output{Unknown: true}
		h.ops = append(h.ops, op)
	case NotApplied:
		h.notApplied = append(h.notApplied, op)
	}
}

// Len is the number of operations in the history (dropped and not-applied
// ones left out).
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Operations returns the history for porcupine, indeterminate writes
// returning after everything else.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var end int64
	for _, op := range h.ops {
		end = max(end, op.Call, op.Return)
	}
	end++
	ops := make([]porcupine.Operation, 0, len(h.ops))
	for _, op := range h.ops {
		ret := op.Return
		if op.Output.Unknown {
			ret = end
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op.Input, Call: op.Call, Output: op.Output, Return: ret, Metadata: op.Note})
	}
	return ops
}

// Check checks the history. It returns porcupine's verdict on the model
// (Unknown if it could not decide within timeout) and the problems the model
// cannot see: reads of the values of NotApplied writes, and CheckRevisions.
func (h *History) Check(timeout time.Duration) (porcupine.CheckResult, []string) {
	ops := h.Operations()
	h.mu.Lock()
	lost := map[string]bool{}
	for _, op := range h.notApplied {
		if op.Input.Value != "" {
			lost[op.Input.Value] = true
		}
	}
	h.mu.Unlock()
	var problems []string
	for _, op := range ops {
		if out := op.Output.(Output); out.Present && lost[out.Value] {
			problems = append(problems, fmt.Sprintf("a write of %s failed with an error saying it was not applied, but it was read: %s", out.Value, describeOp(op)))
		}
	}
	problems = append(problems, CheckRevisions(ops)...)
	return porcupine.CheckOperationsTimeout(model, ops, timeout), problems
}

// WriteVisualization writes porcupine's visualization of the history, with
// notes (e.g. the faults injected) on its timeline, to path (an .html file).
// It checks the history again, within timeout, for the partial
// linearizations it shows.
func (h *History) WriteVisualization(path string, timeout time.Duration, notes []porcupine.Annotation) error {
	_, info := porcupine.CheckOperationsVerbose(model, h.Operations(), timeout)
	info.AddAnnotations(notes)
	return porcupine.VisualizePath(model, info, path)
}
