package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BillPublisher publishes one bill and returns nil only once the broker
// acknowledged it (PUBACK).
type BillPublisher interface {
	PublishBill(ctx context.Context, payload []byte) error
}

// Outbox keeps bills on disk until the broker has them: a bill is durable
// (fsynced file and directory) before Add returns and is deleted only
// after PublishBill succeeded, so neither a broker outage nor a crash
// loses one. A crash between PUBACK and the delete re-sends a bill on the
// next start; consumers de-duplicate on the bill's id.
type Outbox struct {
	dir string
	pub BillPublisher
	log *slog.Logger

	mu    sync.Mutex
	seq   uint64
	files []string // pending file names, oldest first
	wake  chan struct{}
	empty chan struct{} // closed while nothing is pending
}

const outboxSuffix = ".json"

// OpenOutbox opens (creating) dir and loads the bills a previous run left.
func OpenOutbox(dir string, pub BillPublisher, logger *slog.Logger) (*Outbox, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", dir, err)
	}
	o := &Outbox{dir: dir, pub: pub, log: logger.With("component", "outbox"), wake: make(chan struct{}, 1)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(name, ".tmp"):
			// A crash mid-write: Add never returned, so nobody was told
			// the bill was stored; the engine logged it on the way.
			o.log.Warn("removing partial bill left by a crash", "file", name)
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, outboxSuffix):
			seq, ok := parseSeq(name)
			if !ok {
				o.quarantine(name, errors.New("unexpected file name"))
				continue
			}
			o.files = append(o.files, name)
			o.seq = max(o.seq, seq)
		}
	}
	sort.Slice(o.files, func(i, j int) bool {
		a, _ := parseSeq(o.files[i])
		b, _ := parseSeq(o.files[j])
		return a < b
	})
	o.empty = make(chan struct{})
	if len(o.files) == 0 {
		close(o.empty)
	} else {
		o.log.Info("bills waiting from a previous run", "pending", len(o.files))
	}
	return o, nil
}

func parseSeq(name string) (uint64, bool) {
	head, _, ok := strings.Cut(name, "-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(head, 10, 64)
	return seq, err == nil
}

// Add stores a bill durably and queues it for publishing.
func (o *Outbox) Add(id string, payload []byte) error {
	if err := ValidateName("bill id", id); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	o.mu.Lock()
	o.seq++
	name := fmt.Sprintf("%020d-%s%s", o.seq, id, outboxSuffix)
	o.mu.Unlock()
	if err := writeDurable(o.dir, name, payload); err != nil {
		return fmt.Errorf("outbox: store bill %s: %w", id, err)
	}
	o.mu.Lock()
	if len(o.files) == 0 {
		o.empty = make(chan struct{})
	}
	o.files = append(o.files, name)
	o.mu.Unlock()
	o.Kick()
	return nil
}

// writeDurable writes name atomically: a temp file, fsync, rename, fsync
// of the directory (so the rename itself survives a power cut).
func writeDurable(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Kick wakes the sender (after a reconnect).
func (o *Outbox) Kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Pending returns how many bills wait for the broker.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.files)
}

// Flush waits until every bill is published or ctx ends.
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	empty := o.empty
	o.mu.Unlock()
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("outbox flush: %d bills pending: %w", o.Pending(), ctx.Err())
	}
}

// Run publishes pending bills oldest first until ctx ends, retrying with
// backoff while the broker is unreachable.
func (o *Outbox) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		o.mu.Lock()
		var next string
		if len(o.files) > 0 {
			next = o.files[0]
		}
		o.mu.Unlock()
		if next == "" {
			select {
			case <-ctx.Done():
				return
			case <-o.wake:
				continue
			}
		}
		err := o.send(ctx, next)
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		o.log.Debug("bill not published yet", "file", next, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.wake:
			t.Stop()
		case <-t.C:
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (o *Outbox) send(ctx context.Context, name string) error {
	path := filepath.Join(o.dir, name)
	data, err := os.ReadFile(path)
	if err == nil && len(data) == 0 {
		err = errors.New("empty file")
	}
	if err != nil {
		o.quarantine(name, err)
		o.done(name)
		return nil
	}
	pubCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := o.pub.PublishBill(pubCtx, data); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		o.log.Error("published bill not removed; it will be sent again", "file", name, "err", err)
	}
	o.done(name)
	o.log.Debug("bill published", "file", name)
	return nil
}

func (o *Outbox) done(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, f := range o.files {
		if f == name {
			o.files = append(o.files[:i], o.files[i+1:]...)
			break
		}
	}
	if len(o.files) == 0 {
		select {
		case <-o.empty:
		default:
			close(o.empty)
		}
	}
}

// quarantine moves an unreadable bill to dir/bad/ instead of deleting it.
func (o *Outbox) quarantine(name string, cause error) {
	bad := filepath.Join(o.dir, "bad")
	_ = os.MkdirAll(bad, 0o700)
	if err := os.Rename(filepath.Join(o.dir, name), filepath.Join(bad, name)); err != nil {
		o.log.Error("unreadable bill could not be moved aside", "file", name, "cause", cause, "err", err)
		return
	}
	o.log.Error("unreadable bill moved aside", "file", name, "to", bad, "cause", cause)
}
