package enrich

import (
	"hash/maphash"
	"sync"
)

// uaCache maps User-Agent strings to parse results and never holds more than
// its size in entries.
//
// It is split into shards so that concurrent ingest goroutines rarely wait on
// the same mutex. Each shard keeps two generations of a plain map: new
// entries go into cur; when cur is full it becomes prev and a fresh cur
// starts, dropping the old prev. A hit in prev is copied into cur, so entries
// in use survive rotation. This approximates LRU without a linked list or
// per-hit bookkeeping, which matters because almost every lookup is a hit.
type uaCache struct {
	seed   maphash.Seed
	shards []uaShard
}

type uaShard struct {
	mu    sync.Mutex
	cur   map[string]UA
	prev  map[string]UA
	gen   int      // entries per generation
	keep2 bool     // whether prev is kept; false when the shard holds one entry
	_     [24]byte // pads the shard to 64 bytes so two shards' mutexes never share a cache line
}

// A small cache gets fewer shards, so that splitting the bound does not
// leave each shard only a handful of entries to evict among; 64 shards is
// plenty for the number of cores that ingest in parallel.
const (
	uaShardMinEntries = 64
	uaShardMax        = 64
)

func newUACache(size int) *uaCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*2 <= uaShardMax && n*2*uaShardMinEntries <= size {
		n *= 2
	}
	c := &uaCache{seed: maphash.MakeSeed(), shards: make([]uaShard, n)}
	for i := range c.shards {
		// Spread size over the shards exactly, so the total bound is size.
		limit := size / n
		if i < size%n {
			limit++
		}
		s := &c.shards[i]
		s.gen = max(1, limit/2)
		s.keep2 = 2*s.gen <= limit
		s.cur = make(map[string]UA)
	}
	return c
}

func (c *uaCache) shard(key string) *uaShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	h := maphash.String(c.seed, key)
	return &c.shards[h&uint64(len(c.shards)-1)]
}

func (c *uaCache) get(key string) (UA, bool) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.cur[key]; ok {
		return r, true
	}
	if r, ok := s.prev[key]; ok {
		delete(s.prev, key)
		s.insert(key, r)
		return r, true
	}
	return UA{}, false
}

func (c *uaCache) put(key string, r UA) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur[key]; ok {
		return
	}
	// Two goroutines may parse the same new UA at once; the second must
	// not leave a copy in both generations.
	delete(s.prev, key)
	s.insert(key, r)
}

// insert adds key to cur, rotating first when cur is full. With cur and prev
// each at most gen entries (and prev dropped when 2*gen exceeds the limit),
// the shard never exceeds its share of the bound.
func (s *uaShard) insert(key string, r UA) {
	if len(s.cur) >= s.gen {
		if s.keep2 {
			s.prev = s.cur
		} else {
			s.prev = nil
		}
		s.cur = make(map[string]UA, s.gen)
	}
	s.cur[key] = r
}

// len reports the number of cached entries; for tests.
func (c *uaCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
