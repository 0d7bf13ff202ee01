package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/store"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// cacheBucket is the bucket of the cache's KV file.
const cacheBucket = "answers"

// Cache is the exact-match response cache: whole chat answers keyed by a
// hash of the alias and every parameter that shapes the answer, kept in
// their own bbolt file with a TTL and a byte cap (oldest entries evicted
// first). It is consulted only for requests that are deterministic
// (temperature 0) or that ask for it (x-vigil-cache: use).
//
// Writes happen on one background goroutine so that no response waits
// for an fsync; when that queue is full an answer is simply not cached.
type Cache struct {
	kv       *store.KV
	ttl      time.Duration
	maxBytes int64
	logger   *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	index map[string]cacheMeta
	order []cacheOrder // oldest first; entries whose seq is stale are skipped
	total int64
	seq   uint64

	wmu       sync.RWMutex // guards sends on writes against Close
	closed    bool
	writes    chan cacheWrite
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	m         *metrics
}

type cacheMeta struct {
	size    int64
	expires time.Time
	seq     uint64
}

type cacheOrder struct {
	key string
	seq uint64
}

type cacheWrite struct {
	key     string
	value   []byte        // nil deletes
	barrier chan struct{} // set: no write; closed once the writes before it are done
}

// cachedAnswer is what the cache stores per key.
type cachedAnswer struct {
	Created  int64  `json:"created"`
	Expires  int64  `json:"expires"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Content  string `json:"content"`
	// Refusal is the model's refusal, given instead of content.
	Refusal      string     `json:"refusal,omitempty"`
	FinishReason string     `json:"finish_reason"`
	Usage        *usageJSON `json:"usage,omitempty"`
	// UsageEstimated: Usage was counted by the gateway (usage_estimate.go).
	UsageEstimated bool `json:"usage_estimated,omitempty"`
	// SystemFingerprint is the upstream's, when it gave one: the cached
	// answer came from that configuration.
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	// ToolCalls are the answer's tool calls, in order.
	ToolCalls []cachedToolCall `json:"tool_calls,omitempty"`
	// ReasoningContent and ThinkingBlocks are the answer's reasoning
	// (thinking.go), replayed with it.
	ReasoningContent string                `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []cachedThinkingBlock `json:"thinking_blocks,omitempty"`
}

type cachedToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func cacheToolCalls(calls []*pb.ToolCall) []cachedToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]cachedToolCall, len(calls))
	for i, c := range calls {
		out[i] = cachedToolCall{c.GetId(), c.GetName(), c.GetArguments()}
	}
	return out
}

// toolCalls are the cached calls in the contract's form.
func (a *cachedAnswer) toolCalls() []*pb.ToolCall {
	if len(a.ToolCalls) == 0 {
		return nil
	}
	out := make([]*pb.ToolCall, len(a.ToolCalls))
	for i, c := range a.ToolCalls {
		out[i] = &pb.ToolCall{Id: c.ID, Name: c.Name, Arguments: c.Arguments}
	}
	return out
}

// openCache indexes what kv already holds (dropping expired entries and
// enforcing the cap) and starts the writer.
func openCache(kv *store.KV, cfg CacheConfig, m *metrics, logger *slog.Logger) (*Cache, error) {
	c := &Cache{kv: kv, ttl: cfg.TTL, maxBytes: int64(cfg.MaxBytes), logger: logger, now: time.Now,
		index: map[string]cacheMeta{}, writes: make(chan cacheWrite, 256), done: make(chan struct{}), m: m}
	type loaded struct {
		key     string
		created int64
		meta    cacheMeta
	}
	var all []loaded
	var stale []string
	now := c.now()
	err := kv.ForEach(cacheBucket, func(k, v []byte) error {
		var a cachedAnswer
		if json.Unmarshal(v, &a) != nil || time.Unix(0, a.Expires).Before(now) {
			stale = append(stale, string(k))
			return nil
		}
		all = append(all, loaded{string(k), a.Created, cacheMeta{size: int64(len(k) + len(v)), expires: time.Unix(0, a.Expires)}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].created < all[j].created })
	for _, l := range all {
		c.seq++
		l.meta.seq = c.seq
		c.index[l.key] = l.meta
		c.order = append(c.order, cacheOrder{l.key, c.seq})
		c.total += l.meta.size
	}
	stale = append(stale, c.evictLocked()...)
	go c.writer()
	for _, k := range stale {
		c.enqueue(cacheWrite{key: k})
	}
	c.m.cacheBytes.Set(float64(c.total))
	return c, nil
}

func (c *Cache) writer() {
	defer close(c.done)
	for w := range c.writes {
		if w.barrier != nil {
			close(w.barrier)
			continue
		}
		var err error
		if w.value == nil {
			err = c.kv.Delete(context.Background(), cacheBucket, []byte(w.key))
		} else {
			err = c.kv.Put(context.Background(), cacheBucket, []byte(w.key), w.value)
		}
		if err != nil {
			c.logger.Warn("LLM cache write failed", "err", err)
		}
	}
}

func (c *Cache) enqueue(w cacheWrite) bool {
	c.wmu.RLock()
	defer c.wmu.RUnlock()
	if c.closed {
		return false
	}
	select {
	case c.writes <- w:
		return true
	default:
		c.m.cacheDropped.Inc()
		return false
	}
}

// sync waits until every write queued so far is committed.
func (c *Cache) sync() {
	b := make(chan struct{})
	c.wmu.RLock()
	if c.closed {
		c.wmu.RUnlock()
		return
	}
	c.writes <- cacheWrite{barrier: b}
	c.wmu.RUnlock()
	<-b
}

// Close finishes the queued writes and closes the file; later writes are
// dropped and lookups miss. Calling it again does nothing.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.closed = true
		close(c.writes)
		c.wmu.Unlock()
		<-c.done
		c.closeErr = c.kv.Close()
	})
	return c.closeErr
}

// cacheKey hashes everything that shapes an answer. Upstream-specific
// parts (which target answered) are not in it: an alias's answer is
// cached for the alias. scope, when not empty, keeps the answer to the
// requests of the same scope (the API token, under cache.scope: token).
func cacheKey(alias, scope string, req *pb.ChatRequest) string {
	type call struct{ ID, Name, Arguments string }
	type part struct {
		Type, Text, Image, Detail string
		// Added later: omitted when unset, so that keys of image parts
		// did not change.
		File, Filename string `json:",omitempty"`
	}
	type msg struct {
		Role, Content, Name string
		Calls               []call `json:",omitempty"`
		CallID              string `json:",omitempty"`
		Parts               []part `json:",omitempty"`
		// Added later: omitted when unset, so that keys of messages
		// without thinking blocks did not change.
		Thinking []cachedThinkingBlock `json:",omitempty"`
	}
	type tool struct {
		Name, Description, Parameters string
		Strict                        bool
	}
	k := struct {
		V                       int
		Alias                   string
		Messages                []msg
		Temperature, TopP       *float64
		MaxTokens               *int32
		Stop                    []string
		Seed                    *int64
		Format, Schema, SchName string
		Strict                  bool
		Tools                   []tool `json:",omitempty"`
		ToolChoice, ToolFunc    string `json:",omitempty"`
		Parallel                *bool  `json:",omitempty"`
		// Added later: omitted when unset, so that keys of requests
		// without them did not change.
		MaxCompletion             *int32   `json:",omitempty"`
		PresencePen, FrequencyPen *float64 `json:",omitempty"`
		Reasoning                 string   `json:",omitempty"`
		OpenAI                    string   `json:",omitempty"`
		Scope                     string   `json:",omitempty"`
	}{V: 1, Alias: alias, Scope: scope, Temperature: req.Temperature, TopP: req.TopP, MaxTokens: req.MaxTokens, Stop: req.GetStop(),
		Seed: req.Seed, Format: req.GetResponseFormat(), Schema: req.GetJsonSchema(), SchName: req.GetJsonSchemaName(), Strict: req.GetJsonSchemaStrict(),
		ToolChoice: req.GetToolChoice(), ToolFunc: req.GetToolChoiceFunction(), Parallel: req.ParallelToolCalls,
		MaxCompletion: req.MaxCompletionTokens, PresencePen: req.PresencePenalty, FrequencyPen: req.FrequencyPenalty, Reasoning: req.GetReasoningEffort(),
		OpenAI: req.GetOpenaiParams()}
	for _, m := range req.GetMessages() {
		km := msg{Role: m.GetRole(), Content: m.GetContent(), Name: m.GetName(), CallID: m.GetToolCallId()}
		for _, c := range m.GetToolCalls() {
			km.Calls = append(km.Calls, call{c.GetId(), c.GetName(), c.GetArguments()})
		}
		km.Thinking = cacheThinking(m.GetThinkingBlocks())
		for _, p := range m.GetParts() {
			km.Parts = append(km.Parts, part{p.GetType(), p.GetText(), p.GetImageUrl(), p.GetImageDetail(), p.GetFileData(), p.GetFilename()})
		}
		k.Messages = append(k.Messages, km)
	}
	for _, t := range req.GetTools() {
		k.Tools = append(k.Tools, tool{t.GetName(), t.GetDescription(), t.GetParameters(), t.GetStrict()})
	}
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// get returns the live answer under key.
func (c *Cache) get(key string) (*cachedAnswer, bool) {
	c.mu.Lock()
	meta, ok := c.index[key]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if !meta.expires.After(c.now()) {
		c.remove(key, meta.seq)
		return nil, false
	}
	v, ok, err := c.kv.Get(cacheBucket, []byte(key))
	if err != nil || !ok {
		return nil, false // a write still queued, or a read error: a miss
	}
	var a cachedAnswer
	if err := json.Unmarshal(v, &a); err != nil {
		c.remove(key, meta.seq)
		return nil, false
	}
	return &a, true
}

func (c *Cache) remove(key string, seq uint64) {
	c.mu.Lock()
	meta, ok := c.index[key]
	if ok && meta.seq == seq {
		delete(c.index, key)
		c.total -= meta.size
		c.m.cacheBytes.Set(float64(c.total))
	}
	c.mu.Unlock()
	if ok && meta.seq == seq {
		c.enqueue(cacheWrite{key: key})
	}
}

// put stores an answer; one larger than the whole cap is not kept.
func (c *Cache) put(key string, a cachedAnswer) {
	now := c.now()
	a.Created, a.Expires = now.UnixNano(), now.Add(c.ttl).UnixNano()
	v, err := json.Marshal(a)
	if err != nil {
		return
	}
	size := int64(len(key) + len(v))
	if size > c.maxBytes {
		return
	}
	if !c.enqueue(cacheWrite{key: key, value: v}) {
		return
	}
	c.mu.Lock()
	if old, ok := c.index[key]; ok {
		c.total -= old.size
	}
	c.seq++
	c.index[key] = cacheMeta{size: size, expires: now.Add(c.ttl), seq: c.seq}
	c.order = append(c.order, cacheOrder{key, c.seq})
	c.total += size
	evicted := c.evictLocked()
	c.m.cacheBytes.Set(float64(c.total))
	c.mu.Unlock()
	for _, k := range evicted {
		c.enqueue(cacheWrite{key: k})
	}
}

// evictLocked drops the oldest entries until the cap holds, and returns
// their keys for deletion. c.mu is held.
func (c *Cache) evictLocked() []string {
	var out []string
	for c.total > c.maxBytes && len(c.order) > 0 {
		o := c.order[0]
		c.order = c.order[1:]
		meta, ok := c.index[o.key]
		if !ok || meta.seq != o.seq {
			continue // replaced or removed since
		}
		delete(c.index, o.key)
		c.total -= meta.size
		c.m.cacheEvictions.Inc()
		out = append(out, o.key)
	}
	if len(c.order) > 64 && len(c.order) > 2*len(c.index) {
		// Compact the queue of stale entries now and then.
		live := c.order[:0]
		for _, o := range c.order {
			if meta, ok := c.index[o.key]; ok && meta.seq == o.seq {
				live = append(live, o)
			}
		}
		c.order = live
	}
	return out
}
