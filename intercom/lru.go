package intercom

// lru is a bounded map of recently seen strings to a value (FIFO eviction
// is enough: entries only need to outlive retries, not be ranked).
type lru[V any] struct {
	max   int
	order []string
	set   map[string]V
}

func newLRU[V any](max int) *lru[V] { return &lru[V]{max: max, set: make(map[string]V, max)} }

func (l *lru[V]) has(s string) bool { _, ok := l.set[s]; return ok }

func (l *lru[V]) get(s string) (V, bool) { v, ok := l.set[s]; return v, ok }

// add records s with the zero value (a set member).
func (l *lru[V]) add(s string) {
	var zero V
	l.put(s, zero)
}

// put records s with v; a key already present keeps its first value.
func (l *lru[V]) put(s string, v V) {
	if l.has(s) {
		return
	}
	if len(l.order) >= l.max {
		delete(l.set, l.order[0])
		l.order = l.order[1:]
	}
	l.order = append(l.order, s)
	l.set[s] = v
}
