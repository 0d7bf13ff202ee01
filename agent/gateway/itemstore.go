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
	evictItems, evictBytes, expiry prometheus.Counter
	tooLarge                       prometheus.Counter
	items, bytes                   prometheus.Gauge
}

func newItemMetrics(reg prometheus.Registerer) *itemMetrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_response_item_lookups_total",
		Help: "item_reference input items of Responses API requests looked up in the gateway's item store, by result: hit, or miss (unknown, expired, evicted, or kept for another API token).",
	}, []string{"result"})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_response_item_evictions_total",
		Help: "Items dropped from the gateway's Responses item store, by reason: items or bytes (least recently used, to stay within gateway.responses.item_store.max_items or max_bytes), expired (ttl), too_large (an item larger than max_bytes, never kept).",
	}, []string{"reason"})
	items := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_llm_response_item_store_items",
		Help: "Output items of Responses API answers kept for item_reference.",
	})
	bytes := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_llm_response_item_store_bytes",
		Help: "Bytes of the items kept for item_reference (ids, token names and an estimate of the bookkeeping included).",
	})
	if reg != nil {
		reg.MustRegister(lookups, evictions, items, bytes)
	}
	return &itemMetrics{
		hit: lookups.WithLabelValues("hit"), miss: lookups.WithLabelValues("miss"),
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
	if !ok {
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
	key := itemKey{scope, id}
	size := int64(len(scope)+len(id)+len(raw)) + itemOverhead
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
	it := &keptItem{key: key, raw: raw, size: size, expires: now.Add(s.ttl)}
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
// request asked for them to be stored. Called before the answer is
// written, so that a client may refer to them as soon as it has them.
func (rw *responsesAPI) keepOutput(output []any) {
	if !rw.store {
		return
	}
	for _, item := range output {
		var id string
		var v any
		switch it := item.(type) {
		case *messageItemJSON:
			text := ""
			for _, p := range it.Content {
				text += p.Text
			}
			id, v = it.ID, keptMessage{Type: "message", Role: "assistant", Content: text}
		case *callItemJSON:
			id, v = it.ID, keptCall{Type: "function_call", CallID: it.CallID, Name: it.Name, Arguments: it.Arguments}
		default:
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			continue
		}
		rw.items.put(rw.scope, id, raw)
	}
}
