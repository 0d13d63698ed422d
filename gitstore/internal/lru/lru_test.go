package lru

import "testing"

// The cache keeps the most recently used values within its bound, and
// refuses a value that alone exceeds it.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := New[string, int](10)
	c.Add("a", 1, 4)
	c.Add("b", 2, 4)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Add("c", 3, 4) // over the bound: b goes
	if _, ok := c.Get("b"); ok {
		t.Errorf("b is still cached after c pushed the cost over the bound")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%s) = %d, %v; want %d", k, v, ok, want)
		}
	}
	c.Add("big", 4, 11)
	if _, ok := c.Get("big"); ok {
		t.Errorf("a value costing more than the bound was cached")
	}
	c.Add("a", 99, 4) // already there: kept, not replaced
	if v, _ := c.Get("a"); v != 1 {
		t.Errorf("Get(a) = %d after a second Add, want the first value 1", v)
	}
}
