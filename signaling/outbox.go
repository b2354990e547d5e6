package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BillPublisher delivers one bill and returns nil only once the broker has
// acknowledged it (PUBACK). *Client implements it.
type BillPublisher interface {
	PublishBill(ctx context.Context, payload []byte) error
}

// Outbox timing.
const (
	outboxMinBackoff = 200 * time.Millisecond
	outboxMaxBackoff = 10 * time.Second
	// outboxAttemptTimeout bounds one publish attempt, so a connection that
	// hangs without failing does not stall the outbox forever.
	outboxAttemptTimeout = 30 * time.Second
	outboxBadDir         = "bad"
	outboxTmpPrefix      = ".tmp-"
)

// outboxName is <20-digit seq>-<id>.json; the fixed-width sequence makes
// the lexical order of the directory the order bills were added.
var outboxName = regexp.MustCompile(`^([0-9]{20})-(.+)\.json$`)

// maxBillID keeps <seq>-<id>.json and its temporary name under the 255
// byte file name limit; the engine's ids (channel-account-device) fit.
const maxBillID = 200

// validBillID checks a bill id can be a file name part: ids name bills for
// de-duplication and become file names, so no "/" or NUL, no leading dot.
func validBillID(id string) error {
	if id == "" || len(id) > maxBillID {
		return fmt.Errorf("id must be 1-%d bytes, got %d", maxBillID, len(id))
	}
	if strings.ContainsAny(id, "/\x00") || id[0] == '.' {
		return fmt.Errorf("id %q contains / or NUL or starts with a dot", id)
	}
	return nil
}

// Outbox is a durable on-disk queue of call bills: a bill is fsynced to its
// own file before Add returns and the file is removed only after the
// broker's PUBACK, so a bill survives a broker outage, a crash and a power
// cut. Delivery is at least once: a crash between PUBACK and removal sends
// the bill again, so consumers de-duplicate by the id in the record.
type Outbox struct {
	dir string
	pub BillPublisher
	log *slog.Logger

	addMu   sync.Mutex // serialises Add so files appear in sequence order
	mu      sync.Mutex
	pending []outboxEntry // sorted by seq
	nextSeq uint64
	idleCh  chan struct{} // closed while pending is empty
	idle    bool          // idleCh is closed
	wakeCh  chan struct{}
	running atomic.Bool
}

type outboxEntry struct {
	seq  uint64
	id   string
	name string
}

// OpenOutbox opens (creating, mode 0700) the outbox directory and loads
// the bills left there. Leftover temporary files of interrupted Adds are
// removed (their Add never returned, so nobody was told they were safe);
// files that cannot be read back as JSON are moved to dir/bad/ and logged,
// never deleted.
func OpenOutbox(dir string, pub BillPublisher, logger *slog.Logger) (*Outbox, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if pub == nil {
		return nil, errors.New("open outbox: nil BillPublisher")
	}
	o := &Outbox{
		dir:     dir,
		pub:     pub,
		log:     logger.With("component", "outbox", "dir", dir),
		idleCh:  make(chan struct{}),
		wakeCh:  make(chan struct{}, 1),
		nextSeq: 1,
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open outbox: read %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == outboxBadDir && e.IsDir():
			continue
		case strings.HasPrefix(name, outboxTmpPrefix) || strings.HasSuffix(name, ".tmp"):
			o.log.Warn("removing the temporary file of an interrupted bill write", "file", name)
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				o.log.Error("remove temporary outbox file", "file", name, "error", err)
			}
			continue
		}
		m := outboxName.FindStringSubmatch(name)
		if m == nil || !e.Type().IsRegular() {
			o.log.Warn("ignoring unexpected file in outbox", "file", name)
			continue
		}
		seq, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			o.moveAside(name, fmt.Errorf("sequence number: %w", err))
			continue
		}
		if _, err := o.read(name); err != nil {
			o.moveAside(name, err)
			continue
		}
		o.pending = append(o.pending, outboxEntry{seq: seq, id: m[2], name: name})
		if seq >= o.nextSeq {
			o.nextSeq = seq + 1
		}
	}
	sort.Slice(o.pending, func(i, j int) bool { return o.pending[i].seq < o.pending[j].seq })
	if len(o.pending) == 0 {
		close(o.idleCh)
		o.idle = true
	} else {
		o.log.Info("outbox holds unsent bills", "count", len(o.pending))
	}
	// Removals and moves above must survive a crash too.
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	return o, nil
}

// read returns a bill file's payload, checking it is one JSON value (a
// torn or zeroed file after a power cut is not).
func (o *Outbox) read(name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(o.dir, name))
	if err != nil {
		return nil, fmt.Errorf("read bill file: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("bill file %s (%d bytes) is not valid JSON", name, len(data))
	}
	return data, nil
}

// moveAside moves an unusable bill file to dir/bad/ for a human to look at.
func (o *Outbox) moveAside(name string, cause error) {
	bad := filepath.Join(o.dir, outboxBadDir)
	if err := os.MkdirAll(bad, 0o700); err != nil {
		o.log.Error("cannot create directory for bad bill files; leaving the file", "file", name, "cause", cause, "error", err)
		return
	}
	dst := filepath.Join(bad, name)
	if _, err := os.Lstat(dst); err == nil {
		dst = fmt.Sprintf("%s.%d", dst, time.Now().UnixNano())
	}
	if err := os.Rename(filepath.Join(o.dir, name), dst); err != nil {
		o.log.Error("cannot move bad bill file aside; leaving it", "file", name, "cause", cause, "error", err)
		return
	}
	_ = syncDir(bad)
	o.log.Error("moved unreadable bill file aside", "file", name, "to", dst, "cause", cause)
}

// Add stores a bill durably: it returns only after the bill's file and the
// directory entry are on disk. id names the bill (consumers de-duplicate
// by it) and becomes part of a file name (1-200 bytes, no / or NUL, no
// leading dot); payload must be JSON.
func (o *Outbox) Add(id string, payload []byte) error {
	if err := validBillID(id); err != nil {
		return fmt.Errorf("outbox add: %w", err)
	}
	if !json.Valid(payload) {
		return fmt.Errorf("outbox add %s: payload is not valid JSON", id)
	}
	o.addMu.Lock()
	defer o.addMu.Unlock()
	o.mu.Lock()
	seq := o.nextSeq
	o.nextSeq++
	o.mu.Unlock()

	name := fmt.Sprintf("%020d-%s.json", seq, id)
	tmp := filepath.Join(o.dir, outboxTmpPrefix+name)
	if err := writeFileSync(tmp, payload); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox add %s: %w", id, err)
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox add %s: rename into place: %w", id, err)
	}
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("outbox add %s: %w", id, err)
	}

	o.mu.Lock()
	if o.idle {
		o.idleCh = make(chan struct{})
		o.idle = false
	}
	o.pending = append(o.pending, outboxEntry{seq: seq, id: id, name: name})
	o.mu.Unlock()
	o.Kick()
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so a create, rename or remove in it is
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// Kick makes Run retry at once: call it when the connection comes back.
func (o *Outbox) Kick() {
	select {
	case o.wakeCh <- struct{}{}:
	default:
	}
}

// Pending is the number of bills not yet acknowledged by the broker.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// Flush waits until every bill has been acknowledged or ctx ends. Run
// must be running for it to make progress.
func (o *Outbox) Flush(ctx context.Context) error {
	o.mu.Lock()
	idle := o.idleCh
	o.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush outbox: %d bills unsent: %w", o.Pending(), ctx.Err())
	}
}

// Run sends the bills, oldest first, until ctx ends. It is the only sender;
// a second concurrent Run returns at once.
func (o *Outbox) Run(ctx context.Context) {
	if !o.running.CompareAndSwap(false, true) {
		o.log.Error("outbox Run called twice; the second call returns")
		return
	}
	defer o.running.Store(false)
	backoff := outboxMinBackoff
	failures := 0
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		o.mu.Lock()
		var e outboxEntry
		have := len(o.pending) > 0
		if have {
			e = o.pending[0]
		}
		o.mu.Unlock()
		if !have {
			select {
			case <-o.wakeCh:
				continue
			case <-ctx.Done():
				return
			}
		}
		payload, err := o.read(e.name)
		if err != nil {
			// Checked at open; a file changed since is not ours to trust.
			o.moveAside(e.name, err)
			o.done(e)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, outboxAttemptTimeout)
		err = o.pub.PublishBill(actx, payload)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			lvl := slog.LevelDebug
			if failures == 1 || failures%10 == 0 {
				lvl = slog.LevelWarn
			}
			o.log.Log(ctx, lvl, "bill not delivered, will retry", "id", e.id, "attempt", failures, "retry_in", backoff, "pending", o.Pending(), "error", err)
			timer.Reset(backoff)
			select {
			case <-timer.C:
				backoff = min(2*backoff, outboxMaxBackoff)
			case <-o.wakeCh:
				// Add or Kick (reconnect): try now.
				if !timer.Stop() {
					<-timer.C
				}
				backoff = outboxMinBackoff
			case <-ctx.Done():
				return
			}
			continue
		}
		if failures > 0 {
			o.log.Info("bill delivery resumed", "id", e.id, "after_attempts", failures)
		}
		failures, backoff = 0, outboxMinBackoff
		if err := os.Remove(filepath.Join(o.dir, e.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// It was delivered; leaving the file only risks a duplicate
			// after a restart, which consumers tolerate.
			o.log.Error("remove delivered bill file", "file", e.name, "error", err)
		} else if err := syncDir(o.dir); err != nil {
			o.log.Warn("fsync outbox after removing a delivered bill", "error", err)
		}
		o.log.Debug("bill delivered", "id", e.id)
		o.done(e)
	}
}

// done drops e from the pending list.
func (o *Outbox) done(e outboxEntry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, p := range o.pending {
		if p.seq == e.seq {
			o.pending = append(o.pending[:i], o.pending[i+1:]...)
			break
		}
	}
	if len(o.pending) == 0 && !o.idle {
		o.pending = nil
		close(o.idleCh)
		o.idle = true
	}
}
