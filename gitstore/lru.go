package gitstore

import (
	"container/list"
	"sync"
)

// lru is a cache bounded by the total cost of its values, safe for
// concurrent use. Values must not be modified once added.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	maxCost int
	cost    int
	order   *list.List // of *lruItem, most recently used first
	items   map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key   K
	value V
	cost  int
}

func newLRU[K comparable, V any](maxCost int) *lru[K, V] {
	return &lru[K, V]{maxCost: maxCost, order: list.New(), items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem[K, V]).value, true
}

// add stores value under key unless its cost alone exceeds the bound, then
// evicts the least recently used values until the total fits.
func (c *lru[K, V]) add(key K, value V, cost int) {
	if cost > c.maxCost {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[K, V]{key: key, value: value, cost: cost})
	c.cost += cost
	for c.cost > c.maxCost {
		el := c.order.Back()
		item := el.Value.(*lruItem[K, V])
		c.order.Remove(el)
		delete(c.items, item.key)
		c.cost -= item.cost
	}
}
