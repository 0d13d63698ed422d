// Package lru is a least-recently-used cache bounded by the total cost of
// its values, safe for concurrent use: New, then Get and Add. gitstore keeps
// decoded trees and blobs in it, and gitstore/internal/pack its delta bases.
package lru

import (
	"container/list"
	"sync"
)

// Cache is a cache bounded by the total cost of its values, safe for
// concurrent use. Values must not be modified once added.
type Cache[K comparable, V any] struct {
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

// New returns an empty cache that holds values of at most maxCost in total.
func New[K comparable, V any](maxCost int) *Cache[K, V] {
	return &Cache[K, V]{maxCost: maxCost, order: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value stored under key and marks it most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
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

// Add stores value under key unless its cost alone exceeds the bound, then
// evicts the least recently used values until the total fits.
func (c *Cache[K, V]) Add(key K, value V, cost int) {
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
