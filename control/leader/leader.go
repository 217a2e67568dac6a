// Package leader runs the control plane's leader-only work (scheduler,
// controllers) on the one master that leads the Raft cluster: it starts the
// work once this master leads and has applied everything from earlier terms,
// and cancels it as soon as leadership is lost, with a fresh context per
// term.
package leader

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Elector reports leadership: the term and whether this member leads and
// is ready (raftstore.Store.LeaderReady).
type Elector interface {
	LeaderReady() (term uint64, ok bool)
}

// Work is one leader-only component; it runs until ctx ends.
type Work struct {
	Name string
	Run  func(ctx context.Context)
}

// Run starts every work for each term this member leads and stops them
// when the term ends. It returns when ctx ends and all work has returned.
// poll is how often leadership is checked (e.g. 100ms).
func Run(ctx context.Context, e Elector, poll time.Duration, log *slog.Logger, works ...Work) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var (
		stop    func() // stops the current term's work; nil when not leading
		current uint64
	)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		term, ok := e.LeaderReady()
		switch {
		case ok && stop == nil:
			current = term
			log.Info("leader-only work starting", "term", term)
			stop = startTerm(ctx, works)
		case stop != nil && (!ok || term != current):
			stop()
			stop = nil
			log.Info("leader-only work stopped", "term", current)
			continue // a new term may be ready at once
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startTerm starts every work under one context and returns what stops
// them and waits for them.
func startTerm(ctx context.Context, works []Work) func() {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range works {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Run(wctx)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
