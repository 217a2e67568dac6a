package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
)

const waitFor = 10 * time.Second

// change builds a change at rev with one put per key, in order.
func change(rev int64, keys ...string) kv.Change {
	c := kv.Change{Revision: rev}
	for _, k := range keys {
		c.Events = append(c.Events, kv.Event{
			Type: kv.EventPut,
			KV:   command.KeyValue{Key: []byte(k), Value: []byte(fmt.Sprint(rev)), ModRev: rev},
		})
	}
	return c
}

func testConfig() Config {
	c := DefaultConfig()
	c.ProgressInterval = 0
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

func newHub(t testing.TB, cfg Config, rev int64) *Hub {
	t.Helper()
	h := NewHub(cfg, rev)
	t.Cleanup(h.Close)
	return h
}

func watch(t testing.TB, h *Hub, key, end string, from int64) *Watcher {
	t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	w, err := h.Watch(context.Background(), []byte(key), e, from)
	if err != nil {
		t.Fatalf("Watch(%q, %q, %d): %v", key, end, from, err)
	}
	return w
}

// recv returns the next response, failing after a timeout or on close.
func recv(t testing.TB, w *Watcher) Response {
	t.Helper()
	select {
	case r, ok := <-w.C():
		if !ok {
			t.Fatalf("channel closed: %v", w.Err())
		}
		return r
	case <-time.After(waitFor):
		t.Fatal("timed out waiting for a response")
	}
	return Response{}
}

// recvEvents is recv skipping progress notifications.
func recvEvents(t testing.TB, w *Watcher) Response {
	t.Helper()
	for {
		if r := recv(t, w); !r.Progress {
			return r
		}
	}
}

// waitClosed drains w until its channel is closed and returns what it held.
func waitClosed(t testing.TB, w *Watcher) []Response {
	t.Helper()
	var got []Response
	timeout := time.After(waitFor)
	for {
		select {
		case r, ok := <-w.C():
			if !ok {
				return got
			}
			got = append(got, r)
		case <-timeout:
			t.Fatal("timed out waiting for the channel to close")
		}
	}
}

// noResponse checks that nothing is readable right now.
func noResponse(t testing.TB, w *Watcher) {
	t.Helper()
	select {
	case r, ok := <-w.C():
		t.Fatalf("unexpected response %+v (open=%v)", r, ok)
	default:
	}
}

func eventKeys(r Response) string {
	var ks []string
	for _, e := range r.Events {
		ks = append(ks, string(e.KV.Key))
	}
	return strings.Join(ks, ",")
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"progress disabled", func(c *Config) { c.ProgressInterval = 0 }, ""},
		{"history 0", func(c *Config) { c.HistorySize = 0 }, "watch: HistorySize must be >= 1, got 0"},
		{"buffer -1", func(c *Config) { c.BufferSize = -1 }, "watch: BufferSize must be >= 1, got -1"},
		{"progress negative", func(c *Config) { c.ProgressInterval = -time.Second }, "watch: ProgressInterval must be >= 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if d := DefaultConfig(); d.HistorySize != 20000 || d.BufferSize != 128 || d.ProgressInterval != 5*time.Second {
		t.Fatalf("DefaultConfig = %+v", d)
	}
}

func TestFilter(t *testing.T) {
	changes := []kv.Change{
		change(1, "a"),
		change(2, "b"),
		change(3, "ba"),
		change(4, "c"),
		change(5, "bz", "a", "bb"),
		change(6, "\x00"),
	}
	tests := []struct {
		name     string
		key, end string
		want     []string // "rev:keys"
	}{
		{"exact", "b", "", []string{"2:b"}},
		{"exact absent", "x", "", nil},
		{"prefix b", "b", "c", []string{"2:b", "3:ba", "5:bz,bb"}},
		{"range", "a", "b", []string{"1:a", "5:a"}},
		{"to end from b", "b", "\x00", []string{"2:b", "3:ba", "4:c", "5:bz,bb"}},
		{"everything", "\x00", "\x00", []string{"1:a", "2:b", "3:ba", "4:c", "5:bz,a,bb", "6:\x00"}},
		{"empty key to end", "", "\x00", []string{"1:a", "2:b", "3:ba", "4:c", "5:bz,a,bb", "6:\x00"}},
	}
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay=%v", replay), func(t *testing.T) {
			h := newHub(t, testConfig(), 0)
			ws := make([]*Watcher, len(tests))
			if replay {
				h.Publish(changes)
			}
			for i, tt := range tests {
				ws[i] = watch(t, h, tt.key, tt.end, 1)
			}
			if !replay {
				h.Publish(changes)
			}
			h.Publish([]kv.Change{change(7, "a", "b", "x")})
			for i, tt := range tests {
				var got []string
				for {
					r := recvEvents(t, ws[i])
					if r.Revision == 7 {
						break
					}
					got = append(got, fmt.Sprintf("%d:%s", r.Revision, eventKeys(r)))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
				}
			}
		})
	}
}

// TestExactWatcherOnlyOwnKey checks the exact-key index: a watcher gets its
// key's events of a change, together, and nothing else.
func TestExactWatcherOnlyOwnKey(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	a := watch(t, h, "a", "", 0)
	b := watch(t, h, "b", "", 0)
	h.Publish([]kv.Change{change(1, "a"), change(2, "b"), change(3, "a", "b", "a")})
	for _, tc := range []struct {
		w    *Watcher
		want []string
	}{
		{a, []string{"1:a", "3:a,a"}},
		{b, []string{"2:b", "3:b"}},
	} {
		var got []string
		for range tc.want {
			r := recv(t, tc.w)
			got = append(got, fmt.Sprintf("%d:%s", r.Revision, eventKeys(r)))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		noResponse(t, tc.w)
	}
}

func TestEventsOfOneChangeTogether(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	w := watch(t, h, "p/", "p0", 0)
	all := watch(t, h, "", "\x00", 0)
	c := change(1, "p/1", "q", "p/2", "p/3")
	c.Events[2].Type = kv.EventDelete
	h.Publish([]kv.Change{c})
	r := recv(t, w)
	if r.Revision != 1 || eventKeys(r) != "p/1,p/2,p/3" || r.Events[1].Type != kv.EventDelete {
		t.Fatalf("got %+v", r)
	}
	r = recv(t, all)
	if r.Revision != 1 || eventKeys(r) != "p/1,q,p/2,p/3" {
		t.Fatalf("got %+v", r)
	}
	noResponse(t, w)
}

func TestReplayThenLive(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	for r := int64(1); r <= 10; r++ {
		h.Publish([]kv.Change{change(r, "k"), {Revision: r}}) // empty changes are skipped
	}
	w := watch(t, h, "k", "", 4)
	future := watch(t, h, "k", "", 13)
	for r := int64(11); r <= 15; r++ {
		h.Publish([]kv.Change{change(r, "k")})
	}
	for want := int64(4); want <= 15; want++ {
		if r := recv(t, w); r.Revision != want {
			t.Fatalf("got revision %d, want %d", r.Revision, want)
		}
	}
	for want := int64(13); want <= 15; want++ {
		if r := recv(t, future); r.Revision != want {
			t.Fatalf("future watcher: got revision %d, want %d", r.Revision, want)
		}
	}
	noResponse(t, w)
	noResponse(t, future)
	if h.Revision() != 15 || h.OldestRevision() != 1 {
		t.Fatalf("Revision %d Oldest %d", h.Revision(), h.OldestRevision())
	}
}

// TestConcurrentAttach publishes continuously while watchers attach at
// random revisions, with small buffers so they bounce between synced and
// unsynced, and checks that each sees exactly its revisions from fromRev.
func TestConcurrentAttach(t *testing.T) {
	const (
		nChanges  = 3000
		nWatchers = 200
	)
	keys := []string{"a", "b", "c", "d", "e/1", "e/2", "f"}
	rng := rand.New(rand.NewPCG(1, 2))
	changes := make([]kv.Change, nChanges+1) // index = revision
	for r := 1; r < nChanges; r++ {
		n := 1 + rng.IntN(3)
		var ks []string
		for range n {
			ks = append(ks, keys[rng.IntN(len(keys))])
		}
		changes[r] = change(int64(r), ks...)
	}
	changes[nChanges] = change(nChanges, keys...) // every watcher sees the last one

	cfg := testConfig()
	cfg.HistorySize = nChanges
	cfg.BufferSize = 8
	cfg.ProgressInterval = 5 * time.Millisecond // progress must not disturb ordering
	h := newHub(t, cfg, 0)

	type spec struct{ key, end string }
	specs := []spec{{"a", ""}, {"e/", "e0"}, {"c", "\x00"}, {"b", "d"}, {"f", ""}, {"", "\x00"}}

	// The publisher may not run more than a little ahead of the attaching,
	// so the two really overlap; the attaching may run ahead (watchers
	// then wait for future revisions).
	var attached atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 1; r <= nChanges; {
			for int64(r-100)*nWatchers/nChanges > attached.Load() {
				runtime.Gosched()
			}
			n := 1 + rng.IntN(8)
			if r+n > nChanges+1 {
				n = nChanges + 1 - r
			}
			h.Publish(changes[r : r+n])
			r += n
		}
	}()

	errs := make(chan error, nWatchers)
	for i := range nWatchers {
		sp := specs[i%len(specs)]
		from := min(max(h.Revision()+int64(i%11)-5, 1), nChanges)
		var end []byte
		if sp.end != "" {
			end = []byte(sp.end)
		}
		w, err := h.Watch(context.Background(), []byte(sp.key), end, from)
		if err != nil {
			t.Fatalf("Watch from %d: %v", from, err)
		}
		attached.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Cancel()
			// Expected: every revision >= from with matching events.
			var want []string
			for r := from; r <= nChanges; r++ {
				var ks []string
				for _, e := range changes[r].Events {
					if w.match(e.KV.Key) {
						ks = append(ks, string(e.KV.Key))
					}
				}
				if len(ks) > 0 {
					want = append(want, fmt.Sprintf("%d:%s", r, strings.Join(ks, ",")))
				}
			}
			var got []string
			lastProgress := int64(0)
			timeout := time.After(waitFor)
			for {
				select {
				case r, ok := <-w.C():
					if !ok {
						errs <- fmt.Errorf("watcher %d closed early: %v", i, w.Err())
						return
					}
					if r.Progress {
						if r.Revision < lastProgress {
							errs <- fmt.Errorf("watcher %d: progress went back", i)
							return
						}
						lastProgress = r.Revision
						continue
					}
					if r.Revision <= lastProgress {
						errs <- fmt.Errorf("watcher %d: revision %d after progress %d", i, r.Revision, lastProgress)
						return
					}
					got = append(got, fmt.Sprintf("%d:%s", r.Revision, eventKeys(r)))
					if r.Revision < nChanges {
						continue
					}
					if strings.Join(got, " ") != strings.Join(want, " ") {
						errs <- fmt.Errorf("watcher %d (%q..%q from %d):\n got %v\nwant %v", i, sp.key, sp.end, from, got, want)
					}
					return
				case <-timeout:
					errs <- fmt.Errorf("watcher %d timed out after %d responses", i, len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "watchers to go", func() bool { return h.Len() == 0 })
}

func TestCompactedFromRev(t *testing.T) {
	cfg := testConfig()
	cfg.HistorySize = 10
	h := newHub(t, cfg, 0)
	for r := int64(1); r <= 30; r++ {
		h.Publish([]kv.Change{change(r, "k")})
	}
	if got := h.OldestRevision(); got != 21 {
		t.Fatalf("OldestRevision = %d, want 21", got)
	}
	h2 := newHub(t, cfg, 100)
	tests := []struct {
		name   string
		h      *Hub
		from   int64
		oldest int64 // 0: no error
	}{
		{"evicted", h, 5, 21},
		{"just evicted", h, 20, 21},
		{"oldest", h, 21, 0},
		{"now", h, 0, 0},
		{"future", h, 40, 0},
		{"fresh hub old", h2, 50, 101},
		{"fresh hub at rev", h2, 100, 101},
		{"fresh hub next", h2, 101, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.h.Watch(context.Background(), []byte("k"), nil, tt.from)
			if tt.oldest == 0 {
				if err != nil {
					t.Fatal(err)
				}
				w.Cancel()
				return
			}
			var ce *CompactedError
			if w != nil || !errors.As(err, &ce) || !errors.Is(err, ErrCompacted) || errors.Is(err, ErrTooSlow) {
				t.Fatalf("Watch = %v, %v", w, err)
			}
			if ce.Requested != tt.from || ce.Oldest != tt.oldest {
				t.Fatalf("got %+v", ce)
			}
			want := fmt.Sprintf("watch: revision %d is compacted; oldest available is %d", tt.from, tt.oldest)
			if err.Error() != want {
				t.Fatalf("Error() = %q, want %q", err, want)
			}
		})
	}
}

func TestWatchArgs(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	if _, err := h.Watch(context.Background(), []byte("b"), []byte("a"), 0); err == nil {
		t.Error("empty range accepted")
	}
	if _, err := h.Watch(context.Background(), []byte("a"), nil, -1); err == nil {
		t.Error("negative fromRev accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Watch(ctx, []byte("a"), nil, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
	if h.Len() != 0 {
		t.Errorf("Len = %d", h.Len())
	}
}

func TestReset(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	for r := int64(1); r <= 10; r++ {
		h.Publish([]kv.Change{change(r, "k")})
	}
	atNext := watch(t, h, "k", "", 0)     // synced, next 11
	replayed := watch(t, h, "k", "", 3)   // replays 3..10 at once, then next 11
	soon := watch(t, h, "k", "", 12)      // future
	later := watch(t, h, "k", "", 20)     // future, survives
	justAfter := watch(t, h, "k", "", 16) // future, becomes synced
	for r := int64(3); r <= 10; r++ {
		if got := recv(t, replayed).Revision; got != r {
			t.Fatalf("replayed: got %d want %d", got, r)
		}
	}

	// Reset at the same revision keeps watchers at rev+1 and beyond.
	h.Reset(10)
	if h.OldestRevision() != 11 || h.Revision() != 10 || h.Len() != 5 {
		t.Fatalf("after Reset(10): oldest %d rev %d len %d", h.OldestRevision(), h.Revision(), h.Len())
	}
	noResponse(t, atNext)
	noResponse(t, replayed)

	h.Reset(15)
	if h.OldestRevision() != 16 || h.Revision() != 15 {
		t.Fatalf("after Reset(15): oldest %d rev %d", h.OldestRevision(), h.Revision())
	}
	for _, tc := range []struct {
		name string
		w    *Watcher
		req  int64
	}{{"atNext", atNext, 11}, {"replayed", replayed, 11}, {"soon", soon, 12}} {
		waitClosed(t, tc.w)
		var ce *CompactedError
		if err := tc.w.Err(); !errors.As(err, &ce) || ce.Requested != tc.req || ce.Oldest != 16 || !errors.Is(err, ErrCompacted) {
			t.Errorf("%s: Err = %v", tc.name, err)
		}
	}
	if _, err := h.Watch(context.Background(), []byte("k"), nil, 15); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Watch(15) after Reset(15): %v", err)
	}
	now := watch(t, h, "k", "", 16)
	for r := int64(16); r <= 20; r++ {
		h.Publish([]kv.Change{change(r, "k")})
	}
	for r := int64(16); r <= 20; r++ {
		if got := recv(t, now).Revision; got != r {
			t.Fatalf("now: got %d want %d", got, r)
		}
		if got := recv(t, justAfter).Revision; got != r {
			t.Fatalf("justAfter: got %d want %d", got, r)
		}
	}
	if got := recv(t, later).Revision; got != 20 {
		t.Fatalf("later: got %d", got)
	}
	if h.Len() != 3 {
		t.Fatalf("Len = %d, want 3", h.Len())
	}
}

// TestResetCutsReplaying: a watcher still replaying history when the state
// is replaced is cut off with the revision it still needed.
func TestResetCutsReplaying(t *testing.T) {
	cfg := testConfig()
	cfg.BufferSize = 2
	h := newHub(t, cfg, 0)
	for r := int64(1); r <= 10; r++ {
		h.Publish([]kv.Change{change(r, "k")})
	}
	w := watch(t, h, "k", "", 1) // gets 1, 2; stuck at 3
	h.Reset(10)
	got := waitClosed(t, w)
	var ce *CompactedError
	if err := w.Err(); !errors.As(err, &ce) || ce.Requested != int64(len(got))+1 || ce.Oldest != 11 {
		t.Fatalf("got %d responses, Err = %v", len(got), err)
	}
}

func TestRevisionGapAndDuplicate(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	h.Publish([]kv.Change{change(1, "k")})
	w := watch(t, h, "k", "", 0)           // next 2
	f := watch(t, h, "k", "", 5)           // waits for 5
	h.Publish([]kv.Change{change(1, "k")}) // duplicate: ignored
	noResponse(t, w)
	h.Publish([]kv.Change{change(5, "k")}) // gap: 2..4 missing
	waitClosed(t, w)
	if err := w.Err(); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Err = %v", err)
	}
	if r := recv(t, f); r.Revision != 5 {
		t.Fatalf("got %d", r.Revision)
	}
	if h.Revision() != 5 || h.OldestRevision() != 5 {
		t.Fatalf("rev %d oldest %d", h.Revision(), h.OldestRevision())
	}
}

func TestSlowWatcherCatchesUp(t *testing.T) {
	cfg := testConfig()
	cfg.BufferSize = 2
	cfg.HistorySize = 1000
	h := newHub(t, cfg, 0)
	slow := watch(t, h, "k", "", 0)
	fast := watch(t, h, "k", "", 0)
	other := watch(t, h, "", "\x00", 0)

	const n = 200
	published := make(chan struct{})
	go func() {
		defer close(published)
		for r := int64(1); r <= n; r++ {
			h.Publish([]kv.Change{change(r, "k")})
		}
	}()
	// The fast readers get everything while slow reads nothing.
	for r := int64(1); r <= n; r++ {
		if got := recv(t, fast).Revision; got != r {
			t.Fatalf("fast: got %d want %d", got, r)
		}
		if got := recv(t, other).Revision; got != r {
			t.Fatalf("other: got %d want %d", got, r)
		}
	}
	select {
	case <-published:
	case <-time.After(waitFor):
		t.Fatal("Publish blocked")
	}
	// Now the slow one reads: everything, in order, from history then live.
	for r := int64(1); r <= n; r++ {
		if got := recv(t, slow).Revision; got != r {
			t.Fatalf("slow: got %d want %d", got, r)
		}
	}
	h.Publish([]kv.Change{change(n+1, "k")})
	if got := recv(t, slow).Revision; got != n+1 {
		t.Fatalf("slow live: got %d", got)
	}
	noResponse(t, slow)
}

func TestSlowWatcherCutOff(t *testing.T) {
	cfg := testConfig()
	cfg.BufferSize = 2
	cfg.HistorySize = 10
	h := newHub(t, cfg, 0)
	slow := watch(t, h, "k", "", 0)
	fast := watch(t, h, "k", "", 0)
	for r := int64(1); r <= 50; r++ {
		h.Publish([]kv.Change{change(r, "k")})
		if got := recv(t, fast).Revision; got != r {
			t.Fatalf("fast: got %d want %d", got, r)
		}
	}
	got := waitClosed(t, slow)
	if len(got) != 2 || got[0].Revision != 1 || got[1].Revision != 2 {
		t.Fatalf("slow got %+v", got)
	}
	err := slow.Err()
	var ce *CompactedError
	if !errors.Is(err, ErrTooSlow) || !errors.Is(err, ErrCompacted) || !errors.As(err, &ce) {
		t.Fatalf("Err = %v", err)
	}
	if ce.Requested != 3 || ce.Oldest <= ce.Requested {
		t.Fatalf("CompactedError %+v", ce)
	}
	if !strings.Contains(err.Error(), "too slow") || !strings.Contains(err.Error(), "revision 3") {
		t.Fatalf("Error() = %q", err)
	}
	if h.Len() != 1 {
		t.Fatalf("Len = %d", h.Len())
	}
}

func TestProgress(t *testing.T) {
	cfg := testConfig()
	cfg.ProgressInterval = 20 * time.Millisecond
	h := newHub(t, cfg, 7)
	idle := watch(t, h, "idle", "", 0)
	future := watch(t, h, "idle", "", 1000)
	r := recv(t, idle)
	if !r.Progress || r.Revision != 7 || len(r.Events) != 0 {
		t.Fatalf("got %+v", r)
	}
	h.Publish([]kv.Change{change(8, "other")})
	// Progress revisions are monotonic and reach 8.
	for r.Revision != 8 {
		next := recv(t, idle)
		if !next.Progress || next.Revision < r.Revision {
			t.Fatalf("got %+v after %+v", next, r)
		}
		r = next
	}
	h.Publish([]kv.Change{change(9, "idle")})
	if r := recvEvents(t, idle); r.Revision != 9 {
		t.Fatalf("got %+v", r)
	}
	for range 3 {
		if r := recv(t, idle); !r.Progress || r.Revision != 9 {
			t.Fatalf("got %+v", r)
		}
	}
	noResponse(t, future) // a watcher waiting for the future gets no progress
}

func TestCancel(t *testing.T) {
	cfg := testConfig()
	cfg.BufferSize = 1
	tests := []struct {
		name string
		from int64 // 0: synced; 1: unsynced (buffer full); 100: future
	}{{"synced", 0}, {"unsynced", 1}, {"future", 100}}
	for _, tt := range tests {
		for _, viaCtx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ctx=%v", tt.name, viaCtx), func(t *testing.T) {
				h := newHub(t, cfg, 0)
				h.Publish([]kv.Change{change(1, "k"), change(2, "k"), change(3, "k")})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var ws []*Watcher
				for range 100 {
					w, err := h.Watch(ctx, []byte("k"), nil, tt.from)
					if err != nil {
						t.Fatal(err)
					}
					ws = append(ws, w)
				}
				if h.Len() != 100 {
					t.Fatalf("Len = %d", h.Len())
				}
				if viaCtx {
					cancel()
				} else {
					for _, w := range ws {
						w.Cancel()
						w.Cancel() // idempotent
					}
				}
				for _, w := range ws {
					waitClosed(t, w)
					if !errors.Is(w.Err(), context.Canceled) {
						t.Fatalf("Err = %v", w.Err())
					}
				}
				eventually(t, "Len 0", func() bool { return h.Len() == 0 })
				h.Publish([]kv.Change{change(4, "k")}) // nothing to deliver to
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(h.exact) != 0 || len(h.ranges) != 0 || len(h.unsynced) != 0 || len(h.future) != 0 {
					t.Fatalf("leftovers: %d %d %d %d", len(h.exact), len(h.ranges), len(h.unsynced), len(h.future))
				}
			})
		}
	}
}

func TestClose(t *testing.T) {
	cfg := testConfig()
	cfg.BufferSize = 1
	cfg.ProgressInterval = time.Millisecond
	h := NewHub(cfg, 0)
	h.Publish([]kv.Change{change(1, "k"), change(2, "k")})
	ws := []*Watcher{
		watch(t, h, "k", "", 0),
		watch(t, h, "k", "l", 0),
		watch(t, h, "k", "", 1),
		watch(t, h, "k", "", 50),
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // concurrent publishing must be safe
		defer wg.Done()
		for r := int64(3); r < 1000; r++ {
			h.Publish([]kv.Change{change(r, "k")})
		}
	}()
	h.Close()
	wg.Wait()
	h.Close() // idempotent
	for i, w := range ws {
		waitClosed(t, w)
		if w.Err() != ErrClosed {
			t.Errorf("watcher %d: Err = %v", i, w.Err())
		}
	}
	if _, err := h.Watch(context.Background(), []byte("k"), nil, 0); err != ErrClosed {
		t.Fatalf("Watch after Close: %v", err)
	}
	h.Publish([]kv.Change{change(1000, "k")})
	h.Reset(5)
	if h.Len() != 0 {
		t.Fatalf("Len = %d", h.Len())
	}
}

func TestErrNilWhileRunning(t *testing.T) {
	h := newHub(t, testConfig(), 0)
	w := watch(t, h, "k", "", 0)
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
}

func TestFilterFunc(t *testing.T) {
	evs := change(1, "a", "b", "c", "b").Events
	tests := []struct {
		key, end string
		want     string
		shared   bool
	}{
		{"b", "", "b,b", false},
		{"a", "d", "a,b,c,b", true},
		{"b", "\x00", "b,c,b", false},
		{"a", "b", "a", false},
		{"x", "", "", false},
	}
	h := newHub(t, testConfig(), 0)
	for _, tt := range tests {
		w := watch(t, h, tt.key, tt.end, 0)
		got := w.filter(evs)
		if eventKeys(Response{Events: got}) != tt.want {
			t.Errorf("%q..%q: got %s want %s", tt.key, tt.end, eventKeys(Response{Events: got}), tt.want)
		}
		if shared := len(got) > 0 && &got[0] == &evs[0] && len(got) == len(evs); shared != tt.shared {
			t.Errorf("%q..%q: shared = %v", tt.key, tt.end, shared)
		}
	}
	if !bytes.Equal(evs[0].KV.Key, []byte("a")) {
		t.Fatal("filter modified its input")
	}
}

func BenchmarkPublishFanout(b *testing.B) {
	for _, shape := range []string{"same-key", "own-key"} {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/watchers=%d", shape, n), func(b *testing.B) {
				cfg := testConfig()
				h := newHub(b, cfg, 0)
				ws := make([]*Watcher, n)
				evs := make([][]kv.Event, n)
				for i := range ws {
					key := "k"
					if shape == "own-key" {
						key = fmt.Sprintf("k%06d", i)
					}
					evs[i] = change(0, key).Events
					ws[i] = watch(b, h, key, "", 0)
				}
				batch := make([]kv.Change, 1)
				b.ReportAllocs()
				rev := int64(0)
				for i := 0; b.Loop(); i++ {
					rev++
					batch[0] = kv.Change{Revision: rev, Events: evs[i%n]}
					h.Publish(batch)
					if shape == "same-key" {
						for _, w := range ws {
							<-w.ch
						}
					} else {
						<-ws[i%n].ch
					}
				}
			})
		}
	}
}
