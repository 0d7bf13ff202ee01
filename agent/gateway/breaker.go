package gateway

import (
	"sync"
	"time"
)

// circuitState is where a breaker stands.
type circuitState int

const (
	closed circuitState = iota
	halfOpen
	open
)

func (s circuitState) String() string {
	return [...]string{"closed", "half_open", "open"}[s]
}

// breaker is one target's circuit breaker. Closed, it lets calls through
// and counts failures; it opens after ConsecutiveFailures in a row, or when
// failures reach FailureRatio of at least MinRequests calls within Window.
// Open, it refuses calls for OpenFor; then it lets one probe through
// (half-open): success closes it, failure opens it again.
type breaker struct {
	cfg Breaker
	now func() time.Time

	mu          sync.Mutex
	state       circuitState
	consecutive int
	openedAt    time.Time
	probing     bool
	// The window is kept as a ring of per-second buckets.
	buckets []bucket
	// lastFailure is the message of the last failure recorded, so that
	// a request refused by the open circuit can say why it opened.
	lastFailure string
}

type bucket struct {
	sec       int64
	calls     int
	failures  int
	populated bool
}

func newBreaker(cfg Breaker, now func() time.Time) *breaker {
	n := int(cfg.Window / time.Second)
	if n < 1 {
		n = 1
	}
	return &breaker{cfg: cfg, now: now, buckets: make([]bucket, n)}
}

// allow reports whether a call may go now. In half-open it admits one
// probe at a time; the caller must report that call's outcome.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case open:
		if b.now().Sub(b.openedAt) < b.cfg.OpenFor {
			return false
		}
		b.state, b.probing = halfOpen, true
		return true
	case halfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return true
}

// record reports a call's outcome: failure is true for errors that say
// the upstream is unhealthy.
func (b *breaker) record(failure bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.state == halfOpen {
		b.probing = false
		if failure {
			b.state, b.openedAt = open, now
			return
		}
		b.state, b.consecutive = closed, 0
		for i := range b.buckets {
			b.buckets[i] = bucket{}
		}
		return
	}
	if b.state == open {
		return // a call admitted before the circuit opened
	}
	sec := now.Unix()
	bk := &b.buckets[int(sec%int64(len(b.buckets)))]
	if !bk.populated || bk.sec != sec {
		*bk = bucket{sec: sec, populated: true}
	}
	bk.calls++
	if !failure {
		b.consecutive = 0
		return
	}
	bk.failures++
	b.consecutive++
	calls, failures := 0, 0
	for _, x := range b.buckets {
		if x.populated && sec-x.sec < int64(len(b.buckets)) {
			calls += x.calls
			failures += x.failures
		}
	}
	if b.consecutive >= b.cfg.ConsecutiveFailures ||
		(calls >= b.cfg.MinRequests && float64(failures) >= b.cfg.FailureRatio*float64(calls)) {
		b.state, b.openedAt = open, now
	}
}

// forgo gives back a call allow admitted that tells nothing about the
// upstream (the plugin host refused it, or the client went away before
// any answer): it counts neither way, and in half-open the next call may
// probe.
func (b *breaker) forgo() {
	b.mu.Lock()
	if b.state == halfOpen {
		b.probing = false
	}
	b.mu.Unlock()
}

// failedWith notes the message of a failure just recorded.
func (b *breaker) failedWith(msg string) {
	b.mu.Lock()
	b.lastFailure = msg
	b.mu.Unlock()
}

// lastError returns the message of the last failure recorded.
func (b *breaker) lastError() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastFailure
}

// reopensIn is how long until the circuit lets a call through again: the
// rest of open_for while open, a second while a half-open probe is out
// (its outcome decides), 0 when closed. It becomes the Retry-After of a
// request refused by the circuit.
func (b *breaker) reopensIn() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case open:
		if left := b.cfg.OpenFor - b.now().Sub(b.openedAt); left > 0 {
			return left
		}
		return 0
	case halfOpen:
		if b.probing {
			return time.Second
		}
	}
	return 0
}

// current returns the state for metrics and status, advancing an open
// circuit whose wait is over to half-open in what it reports only.
func (b *breaker) current() circuitState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == open && b.now().Sub(b.openedAt) >= b.cfg.OpenFor {
		return halfOpen
	}
	return b.state
}
