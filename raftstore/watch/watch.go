// Package watch fans committed changes out to watchers of a key or key range,
// from a start revision: first replayed from a bounded in-memory history,
// then live, with no gap and no duplicate across the boundary.
//
// The Raft FSM feeds the Hub with Publish after each applied batch. Publish
// never blocks on a watcher: every send is non-blocking, and a watcher never
// holds up another.
//
// # Design
//
// The shape follows etcd's synced and unsynced watcher groups.
//
//   - Synced watchers have seen every change up to the hub's revision.
//     Publish delivers to them directly. They are indexed by exact key (a
//     map) plus one list of range watchers, so a change costs time in the
//     number of watchers that can match it, not in all watchers.
//   - When a synced watcher's channel is full, Publish moves it to the
//     unsynced group, remembering the revision it missed. The hub's one
//     goroutine (the syncer) replays unsynced watchers from the history
//     until their channel is full again or they reach the hub's revision,
//     and then moves them back to synced under the hub lock, so nothing
//     published in between is lost. It runs when signalled and on a short
//     ticker while any watcher is unsynced.
//   - A watcher whose next revision falls out of the history is cut off:
//     its channel is closed and Err reports an error that matches both
//     ErrTooSlow and *CompactedError; the client must re-read and re-watch.
//   - A watcher starting at a revision still in the future waits in a
//     per-revision set and joins the synced group when that revision is
//     published.
//
// Revisions are contiguous: each published change with events has revision
// previous+1, so the history is a ring indexed by revision.
//
// Every send to and close of a watcher's channel happens under the hub lock,
// so a send can never hit a closed channel. Per-watcher memory is bounded by
// the channel capacity (Config.BufferSize).
//
// Responses share the events of published changes (and each other's) and
// must be treated as read-only.
package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/droverhq/drover/raftstore/kv"
)

// Config tunes a Hub.
type Config struct {
	// HistorySize is the number of revisions kept for replay.
	HistorySize int
	// BufferSize is each watcher's channel capacity, in responses.
	BufferSize int
	// ProgressInterval is how often an idle synced watcher gets a progress
	// notification. 0 disables them.
	ProgressInterval time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults used by DefaultConfig.
const (
	DefaultHistorySize      = 20000
	DefaultBufferSize       = 128
	DefaultProgressInterval = 5 * time.Second
)

// While any watcher is unsynced, the syncer retries (its reader may have
// made room) after syncRetry, or after syncRetryBusy when the last pass sent
// something, so a reader draining a backlog is not held to one buffer per
// syncRetry.
const (
	syncRetry     = 10 * time.Millisecond
	syncRetryBusy = time.Millisecond
)

// syncBudget bounds how many history revisions the syncer scans for one
// watcher per hold of the hub lock, so Publish is never held up for long.
const syncBudget = 1024

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		HistorySize:      DefaultHistorySize,
		BufferSize:       DefaultBufferSize,
		ProgressInterval: DefaultProgressInterval,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.HistorySize < 1:
		return fmt.Errorf("watch: HistorySize must be >= 1, got %d", c.HistorySize)
	case c.BufferSize < 1:
		return fmt.Errorf("watch: BufferSize must be >= 1, got %d", c.BufferSize)
	case c.ProgressInterval < 0:
		return fmt.Errorf("watch: ProgressInterval must be >= 0, got %v", c.ProgressInterval)
	}
	return nil
}

// ErrClosed ends every watcher when the hub is closed, and is returned by
// Watch on a closed hub.
var ErrClosed = errors.New("watch: hub closed")

// ErrTooSlow is matched (with errors.Is) by the error of a watcher that read
// so slowly that the history no longer holds its next revision. That error
// is also a *CompactedError.
var ErrTooSlow = errors.New("watch: watcher too slow")

// ErrCompacted is matched (with errors.Is) by every *CompactedError.
var ErrCompacted = errors.New("watch: revision compacted")

// CompactedError says a revision is no longer available for replay.
type CompactedError struct {
	Requested int64 // the revision that was needed
	Oldest    int64 // the oldest revision still available
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("watch: revision %d is compacted; oldest available is %d", e.Requested, e.Oldest)
}

// Is makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// tooSlowError is ErrTooSlow and a *CompactedError at once.
type tooSlowError struct{ c *CompactedError }

func (e *tooSlowError) Error() string {
	return fmt.Sprintf("watch: watcher too slow: revision %d is compacted; oldest available is %d",
		e.c.Requested, e.c.Oldest)
}

func (e *tooSlowError) Unwrap() []error { return []error{ErrTooSlow, e.c} }

// Response is one delivery to a watcher.
type Response struct {
	// Revision is, for events, the revision of their change; for a progress
	// notification, the hub's revision: every change up to it has been
	// delivered to this watcher.
	Revision int64
	// Events are the events of this one change that fall in the watcher's
	// range, in order. A change's matching events always come together.
	// Shared: do not modify.
	Events []kv.Event
	// Progress marks a progress notification, which has no events.
	Progress bool
}

type rangeKind uint8

const (
	kindExact rangeKind = iota // exactly key
	kindRange                  // [key, end)
	kindToEnd                  // every key >= key
)

type wstate uint8

const (
	stateDetached wstate = iota // in no group (transient, under the lock)
	stateSynced
	stateUnsynced
	stateFuture
	stateDone
)

// Watcher receives the changes of one key or range. Read C until it is
// closed, then Err says why.
type Watcher struct {
	h      *Hub
	key    []byte
	end    []byte
	keyStr string // key as a map key, for exact watchers
	kind   rangeKind
	ch     chan Response
	err    atomic.Pointer[error]

	// Guarded by h.mu.
	state   wstate
	nextRev int64       // next revision to consider; unsynced and future only (synced: h.rev+1)
	idx     int         // position in its synced slice
	sent    bool        // got events since the last progress tick
	stopCtx func() bool // unregisters the context.AfterFunc
}

// C returns the channel of responses. It is closed when the watch ends.
func (w *Watcher) C() <-chan Response { return w.ch }

// Err says why the watch ended, once C is closed: the context's error when
// cancelled (context.Canceled after Cancel), a *CompactedError when a Reset
// or a revision gap skipped revisions it needed, an error matching both
// ErrTooSlow and *CompactedError when it fell out of the history, or
// ErrClosed. It is nil while the watch runs.
func (w *Watcher) Err() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Cancel ends the watch, as cancelling its context does.
func (w *Watcher) Cancel() {
	w.h.mu.Lock()
	w.h.finishLocked(w, context.Canceled)
	w.h.mu.Unlock()
}

func (w *Watcher) match(key []byte) bool {
	switch w.kind {
	case kindExact:
		return bytes.Equal(key, w.key)
	case kindToEnd:
		return bytes.Compare(key, w.key) >= 0
	}
	return bytes.Compare(key, w.key) >= 0 && bytes.Compare(key, w.end) < 0
}

// filter returns the events in range: evs itself when all are, nil when
// none are.
func (w *Watcher) filter(evs []kv.Event) []kv.Event {
	i := 0
	for i < len(evs) && w.match(evs[i].KV.Key) {
		i++
	}
	if i == len(evs) {
		return evs
	}
	var out []kv.Event
	for j := range evs {
		if (j < i) || (j > i && w.match(evs[j].KV.Key)) {
			out = append(out, evs[j])
		}
	}
	return out
}

// trySend sends without blocking. Call with the hub lock held.
func (w *Watcher) trySend(r Response) bool {
	select {
	case w.ch <- r:
		w.sent = true
		return true
	default:
		return false
	}
}

// Hub is the watch fan-out. Its methods are safe for concurrent use.
type Hub struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // signals the syncer; capacity 1
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	rev      int64       // last published revision
	hist     []kv.Change // ring: revision r at r % len(hist)
	histLen  int         // revisions held: h.rev-histLen+1 .. h.rev
	n        int         // live watchers
	exact    map[string][]*Watcher
	ranges   []*Watcher
	unsynced map[*Watcher]struct{}
	future   map[int64]map[*Watcher]struct{} // by start revision, > rev+1
	bounced  []*Watcher                      // Publish scratch
}

// NewHub returns a hub whose state is at revision rev, with empty history:
// revisions <= rev cannot be replayed. It starts one goroutine; Close stops
// it. It panics if cfg is invalid (see Config.Validate).
func NewHub(cfg Config, rev int64) *Hub {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Hub{
		cfg:      cfg,
		log:      log,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		rev:      rev,
		hist:     make([]kv.Change, cfg.HistorySize),
		exact:    make(map[string][]*Watcher),
		unsynced: make(map[*Watcher]struct{}),
		future:   make(map[int64]map[*Watcher]struct{}),
	}
	h.wg.Add(1)
	go h.run()
	return h
}

// Revision is the last published revision.
func (h *Hub) Revision() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// OldestRevision is the oldest revision still replayable; Revision()+1 when
// the history is empty.
func (h *Hub) OldestRevision() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.oldestLocked()
}

func (h *Hub) oldestLocked() int64 { return h.rev - int64(h.histLen) + 1 }

// Len is the number of active watchers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Publish records changes, in revision order, and delivers them to
// watchers. Changes with no events are skipped. It never blocks on a
// watcher. The hub keeps the changes (and hands their events to watchers):
// the caller must not modify them afterwards.
//
// A change whose revision is not the next one is handled defensively: an
// old revision is ignored; a gap is treated as a Reset to the revision
// before the change, cutting off watchers that needed the missing ones.
func (h *Hub) Publish(changes []kv.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for i := range changes {
		c := &changes[i]
		if len(c.Events) == 0 {
			continue
		}
		switch {
		case c.Revision <= h.rev:
			h.log.Warn("watch: ignoring change at old revision", "revision", c.Revision, "hub_revision", h.rev)
			continue
		case c.Revision > h.rev+1:
			h.log.Error("watch: revision gap; cutting off watchers that need missing revisions",
				"revision", c.Revision, "hub_revision", h.rev)
			h.resetLocked(c.Revision - 1)
		}
		h.rev = c.Revision
		h.hist[h.slot(c.Revision)] = *c
		if h.histLen < len(h.hist) {
			h.histLen++
		}
		if ws, ok := h.future[c.Revision]; ok {
			delete(h.future, c.Revision)
			for w := range ws {
				h.addSynced(w)
			}
		}
		h.bounced = h.deliver(c, h.bounced[:0])
		for j, w := range h.bounced {
			h.removeSynced(w)
			w.state = stateUnsynced
			w.nextRev = c.Revision
			h.unsynced[w] = struct{}{}
			h.bounced[j] = nil
		}
		if len(h.bounced) > 0 {
			h.signal()
		}
	}
}

func (h *Hub) slot(rev int64) int { return int(rev % int64(len(h.hist))) }

// deliver sends c to the synced watchers it concerns and returns those
// whose channel was full appended to bounced.
func (h *Hub) deliver(c *kv.Change, bounced []*Watcher) []*Watcher {
	if len(h.exact) > 0 {
		if len(c.Events) == 1 {
			for _, w := range h.exact[string(c.Events[0].KV.Key)] {
				if !w.trySend(Response{Revision: c.Revision, Events: c.Events}) {
					bounced = append(bounced, w)
				}
			}
		} else {
			var groups map[string][]kv.Event
			for _, ev := range c.Events {
				if _, ok := h.exact[string(ev.KV.Key)]; ok {
					if groups == nil {
						groups = make(map[string][]kv.Event)
					}
					groups[string(ev.KV.Key)] = append(groups[string(ev.KV.Key)], ev)
				}
			}
			for k, evs := range groups {
				if len(groups) == 1 && len(evs) == len(c.Events) {
					evs = c.Events // every event is on this key: share
				}
				for _, w := range h.exact[k] {
					if !w.trySend(Response{Revision: c.Revision, Events: evs}) {
						bounced = append(bounced, w)
					}
				}
			}
		}
	}
	for _, w := range h.ranges {
		if evs := w.filter(c.Events); len(evs) > 0 {
			if !w.trySend(Response{Revision: c.Revision, Events: evs}) {
				bounced = append(bounced, w)
			}
		}
	}
	return bounced
}

// Reset tells the hub the state was replaced (snapshot restore) at rev. The
// history is cleared, and every watcher whose next revision is <= rev is
// cut off with a *CompactedError; those already at rev+1 or beyond stay.
func (h *Hub) Reset(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.resetLocked(rev)
}

func (h *Hub) resetLocked(rev int64) {
	all := h.detachAllLocked()
	clear(h.hist)
	h.histLen = 0
	h.rev = rev
	for _, w := range all {
		if w.nextRev <= rev {
			h.finishLocked(w, &CompactedError{Requested: w.nextRev, Oldest: rev + 1})
		} else {
			h.placeLocked(w)
		}
	}
}

// detachAllLocked empties every group and returns the watchers that were in
// them, each detached with its next revision set.
func (h *Hub) detachAllLocked() []*Watcher {
	all := make([]*Watcher, 0, h.n)
	for _, ws := range h.exact {
		for _, w := range ws {
			w.nextRev = h.rev + 1
			all = append(all, w)
		}
	}
	for _, w := range h.ranges {
		w.nextRev = h.rev + 1
		all = append(all, w)
	}
	for w := range h.unsynced {
		all = append(all, w)
	}
	for _, ws := range h.future {
		for w := range ws {
			all = append(all, w)
		}
	}
	clear(h.exact)
	clear(h.ranges)
	h.ranges = h.ranges[:0]
	clear(h.unsynced)
	clear(h.future)
	for _, w := range all {
		w.state = stateDetached
	}
	return all
}

// placeLocked puts a detached watcher in the group its next revision calls
// for. The revision must be >= the oldest in history.
func (h *Hub) placeLocked(w *Watcher) {
	switch {
	case w.nextRev == h.rev+1:
		h.addSynced(w)
	case w.nextRev > h.rev+1:
		ws := h.future[w.nextRev]
		if ws == nil {
			ws = make(map[*Watcher]struct{})
			h.future[w.nextRev] = ws
		}
		ws[w] = struct{}{}
		w.state = stateFuture
	default:
		h.unsynced[w] = struct{}{}
		w.state = stateUnsynced
		h.signal()
	}
}

func (h *Hub) addSynced(w *Watcher) {
	w.state = stateSynced
	if w.kind == kindExact {
		ws := h.exact[w.keyStr]
		w.idx = len(ws)
		h.exact[w.keyStr] = append(ws, w)
		return
	}
	w.idx = len(h.ranges)
	h.ranges = append(h.ranges, w)
}

func (h *Hub) removeSynced(w *Watcher) {
	if w.kind == kindExact {
		ws := h.exact[w.keyStr]
		if len(ws) == 1 {
			delete(h.exact, w.keyStr)
			return
		}
		h.exact[w.keyStr] = removeAt(ws, w.idx)
		return
	}
	h.ranges = removeAt(h.ranges, w.idx)
}

// removeAt swap-removes ws[i], keeping idx fields right.
func removeAt(ws []*Watcher, i int) []*Watcher {
	last := len(ws) - 1
	ws[i] = ws[last]
	ws[i].idx = i
	ws[last] = nil
	return ws[:last]
}

// finishLocked ends w with err, once.
func (h *Hub) finishLocked(w *Watcher, err error) {
	switch w.state {
	case stateDone:
		return
	case stateSynced:
		h.removeSynced(w)
	case stateUnsynced:
		delete(h.unsynced, w)
	case stateFuture:
		if ws := h.future[w.nextRev]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(h.future, w.nextRev)
			}
		}
	}
	w.state = stateDone
	w.err.Store(&err)
	close(w.ch)
	h.n--
	if w.stopCtx != nil {
		w.stopCtx()
		w.stopCtx = nil
	}
}

func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Watch watches key, or the range [key, end) when end is non-empty (end
// "\x00" means every key >= key), from revision fromRev: every change with
// revision >= fromRev, filtered to the range. fromRev 0 means from the next
// revision. A fromRev older than OldestRevision fails with a
// *CompactedError; one beyond the next revision waits for it. The watch ends
// when ctx is done or Cancel is called.
func (h *Hub) Watch(ctx context.Context, key, end []byte, fromRev int64) (*Watcher, error) {
	if fromRev < 0 {
		return nil, fmt.Errorf("watch: fromRev must be >= 0, got %d", fromRev)
	}
	w := &Watcher{h: h, key: bytes.Clone(key), kind: kindExact}
	if w.key == nil {
		w.key = []byte{}
	}
	switch {
	case len(end) == 0:
		w.keyStr = string(key)
	case len(end) == 1 && end[0] == 0:
		w.kind = kindToEnd
	default:
		if bytes.Compare(end, key) <= 0 {
			return nil, fmt.Errorf("watch: empty range: end %q <= key %q", end, key)
		}
		w.kind = kindRange
		w.end = bytes.Clone(end)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if fromRev == 0 {
		fromRev = h.rev + 1
	}
	if oldest := h.oldestLocked(); fromRev < oldest {
		h.mu.Unlock()
		return nil, &CompactedError{Requested: fromRev, Oldest: oldest}
	}
	w.ch = make(chan Response, h.cfg.BufferSize)
	w.nextRev = fromRev
	h.n++
	h.placeLocked(w)
	w.stopCtx = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.finishLocked(w, ctx.Err())
		h.mu.Unlock()
	})
	unsynced := w.state == stateUnsynced
	h.mu.Unlock()

	if unsynced {
		// Replay what fits right away; the syncer does the rest.
		if pending, _ := h.syncOne(w); pending {
			h.signal()
		}
	}
	return w, nil
}

// Close ends every watcher with ErrClosed and stops the hub's goroutine,
// waiting for it. It is idempotent. Publish and Reset do nothing afterwards
// and Watch fails with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		for _, w := range h.detachAllLocked() {
			h.finishLocked(w, ErrClosed)
		}
		close(h.stop)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// run is the syncer: it catches unsynced watchers up and sends progress
// notifications.
func (h *Hub) run() {
	defer h.wg.Done()
	var progress <-chan time.Time
	if h.cfg.ProgressInterval > 0 {
		t := time.NewTicker(h.cfg.ProgressInterval)
		defer t.Stop()
		progress = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-progress:
			h.sendProgress()
			continue
		case <-h.wake:
		case <-retry.C:
		}
		switch pending, sent := h.syncAll(); {
		case pending && sent:
			// Readers are draining: come back soon.
			retry.Reset(syncRetryBusy)
		case pending:
			retry.Reset(syncRetry)
		default:
			retry.Stop()
		}
	}
}

// syncAll gives every unsynced watcher a turn. It reports whether any are
// left unsynced, and whether it sent anything.
func (h *Hub) syncAll() (pending, sent bool) {
	h.mu.Lock()
	ws := make([]*Watcher, 0, len(h.unsynced))
	for w := range h.unsynced {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		select {
		case <-h.stop:
			return false, false
		default:
		}
		_, s := h.syncOne(w)
		sent = sent || s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.unsynced) > 0, sent
}

// syncOne replays history to an unsynced watcher until its channel is full
// or it has caught up, in which case it becomes synced; a watcher whose next
// revision left the history is cut off. It reports whether w is still
// unsynced, and whether it sent anything.
func (h *Hub) syncOne(w *Watcher) (pending, sent bool) {
	for {
		h.mu.Lock()
		if w.state != stateUnsynced {
			h.mu.Unlock()
			return false, sent
		}
		if oldest := h.oldestLocked(); w.nextRev < oldest {
			h.log.Debug("watch: cutting off slow watcher", "next_revision", w.nextRev, "oldest", oldest)
			h.finishLocked(w, &tooSlowError{c: &CompactedError{Requested: w.nextRev, Oldest: oldest}})
			h.mu.Unlock()
			return false, sent
		}
		full := false
		for budget := syncBudget; budget > 0 && w.nextRev <= h.rev; budget-- {
			c := &h.hist[h.slot(w.nextRev)]
			if evs := w.filter(c.Events); len(evs) > 0 {
				if !w.trySend(Response{Revision: c.Revision, Events: evs}) {
					full = true
					break
				}
				sent = true
			}
			w.nextRev++
		}
		if w.nextRev == h.rev+1 {
			delete(h.unsynced, w)
			h.addSynced(w)
			h.mu.Unlock()
			return false, sent
		}
		h.mu.Unlock()
		if full {
			return true, sent
		}
	}
}

// sendProgress notifies synced watchers that got no events since the last
// tick.
func (h *Hub) sendProgress() {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := Response{Revision: h.rev, Progress: true}
	notify := func(w *Watcher) {
		if !w.sent {
			select {
			case w.ch <- p:
			default:
			}
		}
		w.sent = false
	}
	for _, ws := range h.exact {
		for _, w := range ws {
			notify(w)
		}
	}
	for _, w := range h.ranges {
		notify(w)
	}
	for w := range h.unsynced {
		w.sent = false
	}
}
