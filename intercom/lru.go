package intercom

// lru is a bounded set of recently seen strings (FIFO eviction is enough:
// entries only need to outlive retries, not be ranked).
type lru struct {
	max   int
	order []string
	set   map[string]struct{}
}

func newLRU(max int) *lru { return &lru{max: max, set: make(map[string]struct{}, max)} }

func (l *lru) has(s string) bool { _, ok := l.set[s]; return ok }

func (l *lru) add(s string) {
	if l.has(s) {
		return
	}
	if len(l.order) >= l.max {
		delete(l.set, l.order[0])
		l.order = l.order[1:]
	}
	l.order = append(l.order, s)
	l.set[s] = struct{}{}
}
