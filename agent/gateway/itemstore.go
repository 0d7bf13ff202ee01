package gateway

import (
	"container/list"
	"encoding/json"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/units"
)

// This file keeps the output items of recent Responses API answers so
// that a later request may name them with an item_reference instead of
// sending them again, as clients do when they believe the server stored
// the response (the Vercel AI SDK's default Responses model sends its
// earlier assistant messages that way). It is not OpenAI's store: only
// the items are kept, only to be referenced, in memory (lost on
// restart), for a bounded number of items and bytes, each for ttl after
// it was last stored or referenced, and each only for the API token that
// made the request that produced it. GET /responses/{id} still answers
// 404.
//
// The same store keeps, under a kept answer's response id, what a request
// with previous_response_id needs to rebuild the conversation: that
// request's input items as resolved (item_references replaced by what
// they named; its instructions are not kept, since OpenAI does not carry
// them over) and the answer's output items, plus the id of the response
// that request itself continued. A chain is walked link by link rather
// than each response holding a copy of the whole conversation so far: a
// copy per turn would make a conversation of n turns cost O(n^2) bytes of
// the shared budget, while a link costs only its own turn. The price is
// that a chain breaks when any link is evicted or expires (each link's ttl
// is renewed whenever the chain is walked, so a conversation in use stays
// whole unless the bounds push it out); such a follow-up is answered as
// an unknown id, and the client can always send the whole input instead.

// ItemStoreConfig bounds the items kept for item_reference
// (gateway.responses.item_store).
type ItemStoreConfig struct {
	// MaxItems caps the items kept; the least recently used go first.
	// 0 turns the store off: answers say "store": false and every
	// item_reference is unknown.
	MaxItems int `yaml:"max_items"`
	// MaxBytes caps the bytes of the items kept (ids and token names
	// included).
	MaxBytes units.Bytes `yaml:"max_bytes"`
	// TTL is how long an item is kept after it was last stored or
	// referenced.
	TTL time.Duration `yaml:"ttl"`
}

// ResponsesConfig is the Responses API's settings (gateway.responses).
type ResponsesConfig struct {
	ItemStore ItemStoreConfig `yaml:"item_store"`
}

func defaultResponsesConfig() ResponsesConfig {
	return ResponsesConfig{ItemStore: ItemStoreConfig{MaxItems: 10000, MaxBytes: 32 << 20, TTL: time.Hour}}
}

// validate reports the item store's problems through bad.
func (c ResponsesConfig) validate(bad func(key, format string, args ...any)) {
	s := c.ItemStore
	if s.MaxItems < 0 {
		bad("responses.item_store.max_items", "must not be negative (0 turns the store off), got %d", s.MaxItems)
	}
	if s.MaxBytes < 0 {
		bad("responses.item_store.max_bytes", "must not be negative, got %d", s.MaxBytes)
	}
	if s.TTL < 0 {
		bad("responses.item_store.ttl", "must not be negative, got %s", s.TTL)
	}
	if s.MaxItems > 0 {
		if s.MaxBytes == 0 {
			bad("responses.item_store.max_bytes", "must be positive while max_items is above 0 (max_items: 0 turns the store off)")
		}
		if s.TTL == 0 {
			bad("responses.item_store.ttl", "must be positive while max_items is above 0 (max_items: 0 turns the store off)")
		}
	}
}

// itemOverhead is what one kept item costs besides its id, scope and
// JSON: the list element, the map entry and the record, roughly.
const itemOverhead = 160

// itemKey is an item's id within the scope (API token name) it may be
// referenced from.
type itemKey struct{ scope, id string }

type keptItem struct {
	key     itemKey
	raw     json.RawMessage // the item as an input item, by value
	size    int64
	expires time.Time
	// resp is set for a kept response (key.id is its resp_ id; raw is
	// nil): only previous_response_id finds it, never item_reference.
	resp *keptResponse
}

// keptResponse is one link of a chain of responses: a turn's items
// (its request's input items as resolved, then its output items, each as
// an input item) and the id of the response that turn continued ("" for
// the first).
type keptResponse struct {
	prev  string
	items []json.RawMessage
}

// size is what a kept response costs besides the overhead of any kept
// entry: its items, their slice headers and the previous id.
func (r *keptResponse) size() int64 {
	n := int64(len(r.prev)) + 24*int64(len(r.items))
	for _, it := range r.items {
		n += int64(len(it))
	}
	return n
}

// itemStore is a bounded LRU of output items. Expiry is last use plus
// ttl, so the list (front: most recently used) is also in expiry order:
// the expired ones are at the back.
type itemStore struct {
	maxItems int
	maxBytes int64
	ttl      time.Duration
	now      func() time.Time
	m        *itemMetrics

	mu    sync.Mutex
	byKey map[itemKey]*list.Element
	lru   list.List
	bytes int64
}

type itemMetrics struct {
	hit, miss                      prometheus.Counter
	prevHit, prevMiss              prometheus.Counter
	evictItems, evictBytes, expiry prometheus.Counter
	tooLarge                       prometheus.Counter
	items, bytes                   prometheus.Gauge
}

func newItemMetrics(reg prometheus.Registerer) *itemMetrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_response_item_lookups_total",
		Help: "item_reference input items of Responses API requests (and reasoning input items without encrypted_content, by id) looked up in the gateway's item store, by result: hit, or miss (unknown, expired, evicted, or kept for another API token).",
	}, []string{"result"})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_response_item_evictions_total",
		Help: "Items dropped from the gateway's Responses item store, by reason: items or bytes (least recently used, to stay within gateway.responses.item_store.max_items or max_bytes), expired (ttl), too_large (an item larger than max_bytes, never kept).",
	}, []string{"reason"})
	prev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_previous_response_lookups_total",
		Help: "Responses API requests with previous_response_id, by result: hit (the whole chain of earlier responses was kept), or miss (unknown, expired, evicted, a link of its chain gone, or kept for another API token).",
	}, []string{"result"})
	items := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_llm_response_item_store_items",
		Help: "Entries of the gateway's Responses item store: output items of Responses API answers kept for item_reference, and the answers kept for previous_response_id.",
	})
	bytes := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_llm_response_item_store_bytes",
		Help: "Bytes of the entries of the gateway's Responses item store (ids, token names and an estimate of the bookkeeping included).",
	})
	if reg != nil {
		reg.MustRegister(lookups, evictions, prev, items, bytes)
	}
	return &itemMetrics{
		hit: lookups.WithLabelValues("hit"), miss: lookups.WithLabelValues("miss"),
		prevHit: prev.WithLabelValues("hit"), prevMiss: prev.WithLabelValues("miss"),
		evictItems: evictions.WithLabelValues("items"), evictBytes: evictions.WithLabelValues("bytes"),
		expiry: evictions.WithLabelValues("expired"), tooLarge: evictions.WithLabelValues("too_large"),
		items: items, bytes: bytes,
	}
}

// newItemStore returns nil (the store is off) when c.MaxItems is 0.
func newItemStore(c ItemStoreConfig, m *itemMetrics, now func() time.Time) *itemStore {
	if c.MaxItems <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &itemStore{maxItems: c.MaxItems, maxBytes: int64(c.MaxBytes), ttl: c.TTL, now: now, m: m, byKey: map[itemKey]*list.Element{}}
}

// get returns the item id kept for scope, and keeps it ttl longer. An
// item kept for another scope is a miss, like an unknown one.
func (s *itemStore) get(scope, id string) (json.RawMessage, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	el, ok := s.byKey[itemKey{scope, id}]
	if !ok || el.Value.(*keptItem).resp != nil {
		s.m.miss.Inc()
		return nil, false
	}
	it := el.Value.(*keptItem)
	it.expires = now.Add(s.ttl)
	s.lru.MoveToFront(el)
	s.m.hit.Inc()
	return it.raw, true
}

// put keeps raw as item id for scope (replacing an item of that id).
func (s *itemStore) put(scope, id string, raw json.RawMessage) {
	if s == nil {
		return
	}
	s.keep(&keptItem{key: itemKey{scope, id}, raw: raw, size: int64(len(scope)+len(id)+len(raw)) + itemOverhead})
}

// putResponse keeps response id's turn for scope: items (its input items
// as resolved, then its output items) and prev, the response it continued
// ("" for none).
func (s *itemStore) putResponse(scope, id, prev string, items []json.RawMessage) {
	if s == nil {
		return
	}
	r := &keptResponse{prev: prev, items: items}
	s.keep(&keptItem{key: itemKey{scope, id}, resp: r, size: int64(len(scope)+len(id)) + r.size() + itemOverhead})
}

// chain walks the responses kept for scope from id back to the first,
// renewing each link's ttl, and returns their items oldest first. It
// fails (false) when id, or any response before it, is not kept for
// scope, as one miss; a whole chain is one hit.
func (s *itemStore) chain(scope, id string) ([]json.RawMessage, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	var links []*keptResponse
	var els []*list.Element
	// A chain cannot loop (each response id is new when it is kept), and
	// it is at most as long as the store is: the bound is a guard only.
	for cur := id; cur != "" && len(links) <= s.lru.Len(); {
		el, ok := s.byKey[itemKey{scope, cur}]
		if !ok || el.Value.(*keptItem).resp == nil {
			s.m.prevMiss.Inc()
			return nil, false
		}
		r := el.Value.(*keptItem).resp
		links, els = append(links, r), append(els, el)
		cur = r.prev
	}
	var out []json.RawMessage
	for i := len(links) - 1; i >= 0; i-- {
		out = append(out, links[i].items...)
		els[i].Value.(*keptItem).expires = now.Add(s.ttl)
		s.lru.MoveToFront(els[i])
	}
	s.m.prevHit.Inc()
	return out, true
}

// keep adds it (replacing an entry of its key), within the bounds.
func (s *itemStore) keep(it *keptItem) {
	key, size := it.key, it.size
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if el, ok := s.byKey[key]; ok {
		s.remove(el)
	}
	if size > s.maxBytes {
		s.m.tooLarge.Inc()
		return
	}
	it.expires = now.Add(s.ttl)
	s.byKey[key] = s.lru.PushFront(it)
	s.bytes += size
	for s.lru.Len() > s.maxItems {
		s.remove(s.lru.Back())
		s.m.evictItems.Inc()
	}
	for s.bytes > s.maxBytes {
		s.remove(s.lru.Back())
		s.m.evictBytes.Inc()
	}
	s.gauges()
}

// expire drops the expired items (at the back). Called with mu held.
func (s *itemStore) expire(now time.Time) {
	dropped := false
	for el := s.lru.Back(); el != nil && !now.Before(el.Value.(*keptItem).expires); el = s.lru.Back() {
		s.remove(el)
		s.m.expiry.Inc()
		dropped = true
	}
	if dropped {
		s.gauges()
	}
}

func (s *itemStore) remove(el *list.Element) {
	it := el.Value.(*keptItem)
	s.lru.Remove(el)
	delete(s.byKey, it.key)
	s.bytes -= it.size
}

func (s *itemStore) gauges() {
	s.m.items.Set(float64(s.lru.Len()))
	s.m.bytes.Set(float64(s.bytes))
}

// The input items that output items stand for, as kept: what a client
// would send by value (a message's text as a string, as the AI SDK sends
// it with store: false), so that a reference resolves to exactly the chat
// message the item itself would become.
type keptMessage struct {
	Type    string `json:"type"`
	Role    string `json:"role"`
	Content string `json:"content"`
}

type keptCall struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// keepOutput keeps a Response's output items for rw's scope, when the
// request asked for them to be stored, and the response's turn (the
// request's input items as resolved, then the output items) under its
// id for previous_response_id. Called before the answer is written, so
// that a client may refer to them as soon as it has them.
func (rw *responsesAPI) keepOutput(id string, output []any) {
	if !rw.store {
		return
	}
	turn := make([]json.RawMessage, 0, len(rw.input)+len(output))
	turn = append(turn, rw.input...)
	for _, item := range output {
		var itemID string
		var v any
		switch it := item.(type) {
		case *messageItemJSON:
			text := ""
			for _, p := range it.Content {
				text += p.Text
			}
			itemID, v = it.ID, keptMessage{Type: "message", Role: "assistant", Content: text}
		case *callItemJSON:
			itemID, v = it.ID, keptCall{Type: "function_call", CallID: it.CallID, Name: it.Name, Arguments: it.Arguments}
		case *reasoningItemJSON:
			itemID, v = it.ID, keptReasoningOf(it)
		default:
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			continue
		}
		rw.items.put(rw.scope, itemID, raw)
		turn = append(turn, raw)
	}
	rw.items.putResponse(rw.scope, id, rw.prev, turn)
}
