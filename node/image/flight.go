package image

import (
	"context"
	"sync"
)

// group runs one call per key at a time and lets every caller of that key
// share its result, like x/sync/singleflight, with two differences: the
// call runs on its own goroutine under a context that ends only when every
// caller has given up (or the store closes), and progress reaches every
// caller still waiting.
type group struct {
	s     *Store
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{}
	val     any
	err     error
	cancel  context.CancelFunc
	waiters int
	subs    map[int]func(Progress)
	nextSub int
	emu     sync.Mutex // one progress report at a time
}

func (c *call) emitter(g *group) func(Progress) {
	return func(p Progress) {
		g.mu.Lock()
		subs := make([]func(Progress), 0, len(c.subs))
		for i := range c.nextSub {
			if f := c.subs[i]; f != nil {
				subs = append(subs, f)
			}
		}
		g.mu.Unlock()
		c.emu.Lock()
		defer c.emu.Unlock()
		for _, f := range subs {
			f(p)
		}
	}
}

// do runs fn for key unless a call for key is under way, and waits for
// it or for ctx. progress (may be nil) receives what fn emits while this
// caller waits.
func (g *group) do(ctx context.Context, key string, progress func(Progress), fn func(ctx context.Context, emit func(Progress)) (any, error)) (any, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call{}
	}
	c, ok := g.calls[key]
	if !ok {
		cctx, cancel := context.WithCancel(g.s.ctx)
		c = &call{done: make(chan struct{}), cancel: cancel, subs: map[int]func(Progress){}}
		g.calls[key] = c
		emit := c.emitter(g)
		if !g.s.goFunc(func() {
			defer cancel()
			c.val, c.err = fn(cctx, emit)
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}) {
			delete(g.calls, key)
			g.mu.Unlock()
			cancel()
			return nil, ErrClosed
		}
	}
	c.waiters++
	sub := -1
	if progress != nil {
		sub = c.nextSub
		c.nextSub++
		c.subs[sub] = progress
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		delete(c.subs, sub)
		c.waiters--
		if c.waiters == 0 {
			// Nobody wants it any more: stop it, and let the next caller
			// start afresh rather than join a dying call.
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			c.cancel()
		}
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

// waiting reports how many callers wait for key (for tests).
func (g *group) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}
