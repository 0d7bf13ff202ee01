package store

import "sync"

// notifier is a broadcast of "something was committed": wait hands out a
// channel that the next wake closes. Waiting costs nothing on the writer's
// side when nobody waits.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) wake() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// Notify returns a channel that is closed once samples appended after this
// call are committed (and so visible to ReadFrom), or when the store is
// closed. Each call may return a new channel; a reader that has caught up
// calls Notify before its last ReadFrom and waits on the channel only when
// that read came back empty, so no commit slips between the two.
func (s *Store) Notify() <-chan struct{} { return s.notify.wait() }
