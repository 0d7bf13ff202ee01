package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeReq is one caller's share of a group commit. fn runs inside the
// shared read-write transaction; it must keep every effect inside tx and
// return the in-memory effects as after, which runs only once the
// transaction is durable. fn may run more than once (when another request
// in the same batch fails, the batch is retried without it).
type writeReq struct {
	fn     func(tx *bolt.Tx) (after func(), err error)
	weight int        // samples or ops, for batch sizing
	done   chan error // buffered, receives exactly one result
}

// committer owns the write side of one bbolt file: a single goroutine takes
// requests from a bounded queue, runs everything that queued up while the
// previous commit was syncing in one transaction, commits it (fsync) and
// only then answers the callers. This is group commit: N concurrent writers
// pay for about one fsync per round, not N.
type committer struct {
	queue     chan *writeReq
	ctrl      chan func() // exclusive work run by the writer goroutine
	delay     time.Duration
	maxWeight int

	db func() *bolt.DB // the current file; only the writer goroutine swaps it

	// Hooks, all called from the writer goroutine.
	beginTx  func()                                     // before each transaction attempt
	onCommit func(d time.Duration, reqs int, err error) // after each commit attempt
	idle     func()                                     // after each batch
	tick     <-chan time.Time
	onTick   func()

	sendMu sync.RWMutex // held for reading while sending; for writing by stop
	closed bool
	exited chan struct{}

	commits atomic.Uint64 // successful commits (each one fsync round)
}

func newCommitter(queueSize, maxWeight int, delay time.Duration, db func() *bolt.DB) *committer {
	return &committer{
		queue:     make(chan *writeReq, queueSize),
		ctrl:      make(chan func()),
		delay:     delay,
		maxWeight: maxWeight,
		db:        db,
		exited:    make(chan struct{}),
	}
}

// submit queues r and waits for its commit. If ctx ends after r was queued,
// submit returns ctx.Err() but r may still be committed: the outcome is
// unknown to the caller, who must treat it as not acknowledged.
func (c *committer) submit(ctx context.Context, fn func(tx *bolt.Tx) (func(), error), weight int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{fn: fn, weight: weight, done: make(chan error, 1)}
	c.sendMu.RLock()
	if c.closed {
		c.sendMu.RUnlock()
		return ErrClosed
	}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		c.sendMu.RUnlock()
		return ctx.Err()
	}
	c.sendMu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exclusive runs fn on the writer goroutine between commits, so no write
// transaction is open while it runs, and waits for it.
func (c *committer) exclusive(fn func()) error {
	done := make(chan struct{})
	select {
	case c.ctrl <- func() { defer close(done); fn() }:
	case <-c.exited:
		return ErrClosed
	}
	<-done
	return nil
}

// stop refuses new requests, lets the writer commit what is queued, and
// waits for it to exit.
func (c *committer) stop() {
	c.sendMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.sendMu.Unlock()
	<-c.exited
}

func (c *committer) run() {
	defer close(c.exited)
	var batch []*writeReq
	var timer *time.Timer
	lastLen := 0
	for {
		batch = batch[:0]
		select {
		case r, ok := <-c.queue:
			if !ok {
				return
			}
			batch = append(batch, r)
		case fn := <-c.ctrl:
			fn()
			continue
		case <-c.tick:
			if c.onTick != nil {
				c.onTick()
			}
			continue
		}
		weight := batch[0].weight
		open := true
		take := func(r *writeReq, ok bool) {
			if !ok {
				open = false
				return
			}
			batch = append(batch, r)
			weight += r.weight
		}
	drain:
		for open && weight < c.maxWeight {
			select {
			case r, ok := <-c.queue:
				take(r, ok)
			default:
				break drain
			}
		}
		// Adaptive wait: when the previous commit grouped more callers than
		// are here now, they are probably resubmitting right after their
		// acknowledgement; waiting a moment for them lets one fsync serve
		// all of them again. A lone writer (last batch of one) never waits.
		if open && c.delay > 0 && len(batch) < lastLen && weight < c.maxWeight {
			if timer == nil {
				timer = time.NewTimer(c.delay)
			} else {
				timer.Reset(c.delay)
			}
		wait:
			for open && len(batch) < lastLen && weight < c.maxWeight {
				select {
				case r, ok := <-c.queue:
					take(r, ok)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
		lastLen = len(batch)
		c.commit(batch)
		clear(batch)
		if !open {
			return
		}
		if c.idle != nil {
			c.idle()
		}
	}
}

// commit runs reqs in one transaction. A request whose fn fails is answered
// with its own error and the rest are retried without it, so one bad
// request never fails its neighbours. A failed commit (I/O) fails them all.
func (c *committer) commit(reqs []*writeReq) {
	for len(reqs) > 0 {
		failed := -1
		var failErr error
		afters := make([]func(), 0, len(reqs))
		db := c.db()
		start := time.Now()
		var err error
		if db == nil {
			err = ErrClosed
		} else {
			err = db.Update(func(tx *bolt.Tx) error {
				if c.beginTx != nil {
					c.beginTx()
				}
				for i, r := range reqs {
					after, err := callSafely(r.fn, tx)
					if err != nil {
						failed, failErr = i, err
						return err
					}
					afters = append(afters, after)
				}
				return nil
			})
		}
		if failed >= 0 {
			reqs[failed].done <- failErr
			reqs = append(reqs[:failed], reqs[failed+1:]...)
			continue
		}
		if c.onCommit != nil {
			c.onCommit(time.Since(start), len(reqs), err)
		}
		if err == nil {
			c.commits.Add(1)
			for _, a := range afters {
				if a != nil {
					a()
				}
			}
		} else if err != ErrClosed {
			err = classifyCommitErr(err)
		}
		for _, r := range reqs {
			r.done <- err
		}
		return
	}
}

func callSafely(fn func(*bolt.Tx) (func(), error), tx *bolt.Tx) (after func(), err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
