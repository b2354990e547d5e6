package signaling_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// fakePub records bills; fail (if set) decides per attempt whether the
// "broker" acknowledges.
type fakePub struct {
	mu       sync.Mutex
	fail     func(payload []byte) error
	got      []string
	attempts chan string
}

func newFakePub() *fakePub { return &fakePub{attempts: make(chan string, 10000)} }

func (f *fakePub) PublishBill(ctx context.Context, payload []byte) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(payload)
	}
	f.attempts <- string(payload)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.got = append(f.got, string(payload))
	f.mu.Unlock()
	return nil
}

func (f *fakePub) setFail(fn func([]byte) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *fakePub) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func bill(id string) []byte { return []byte(fmt.Sprintf(`{"id":%q}`, id)) }

func runOutbox(t *testing.T, o *signaling.Outbox) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func jsonFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var errDown = errors.New("broker down")

func TestOutboxDurableAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	down := newFakePub()
	down.setFail(func([]byte) error { return errDown })
	o, err := signaling.OpenOutbox(dir, down, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox dir mode %v: %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	for _, id := range []string{"c1-flat1-a", "c2-flat1-a", "c3-flat1-a"} {
		if err := o.Add(id, bill(id)); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, down.attempts, "a failed attempt")
	cancel()
	<-done
	if o.Pending() != 3 || len(jsonFiles(t, dir)) != 3 {
		t.Fatalf("pending %d, files %d after failures; want 3", o.Pending(), len(jsonFiles(t, dir)))
	}

	up := newFakePub()
	o2, err := signaling.OpenOutbox(dir, up, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if o2.Pending() != 3 {
		t.Fatalf("reopened pending %d, want 3", o2.Pending())
	}
	runOutbox(t, o2)
	if err := o2.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := up.delivered()
	want := []string{string(bill("c1-flat1-a")), string(bill("c2-flat1-a")), string(bill("c3-flat1-a"))}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %v, want %v in order", got, want)
	}
	if f := jsonFiles(t, dir); len(f) != 0 {
		t.Fatalf("files left after delivery: %v", f)
	}
	// New bills continue the sequence after the reopened ones.
	if err := o2.Add("c4", bill("c4")); err != nil {
		t.Fatal(err)
	}
	if err := o2.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxRemovesOnlyAfterAck(t *testing.T) {
	dir := t.TempDir()
	pub := newFakePub()
	release := make(chan error)
	pub.setFail(func([]byte) error { return <-release })
	o, err := signaling.OpenOutbox(dir, pub, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runOutbox(t, o)
	if err := o.Add("b1", bill("b1")); err != nil {
		t.Fatal(err)
	}
	// First attempt: no PUBACK (error). The file must stay.
	release <- errDown
	recv(t, pub.attempts, "first attempt")
	if len(jsonFiles(t, dir)) != 1 || o.Pending() != 1 {
		t.Fatal("bill removed without an acknowledgement")
	}
	o.Kick() // as on reconnect: retry now rather than after the backoff
	release <- nil
	recv(t, pub.attempts, "second attempt")
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if len(jsonFiles(t, dir)) != 0 {
		t.Fatal("acknowledged bill not removed")
	}
}

func TestOutboxConcurrentAdds(t *testing.T) {
	pub := newFakePub()
	o, err := signaling.OpenOutbox(t.TempDir(), pub, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runOutbox(t, o)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := o.Add(id, bill(id)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := pub.delivered()
	seen := map[string]bool{}
	for _, b := range got {
		if seen[b] {
			t.Fatalf("bill %s delivered twice without a failure", b)
		}
		seen[b] = true
	}
	if len(seen) != 100 {
		t.Fatalf("delivered %d distinct bills, want 100", len(seen))
	}
}

func TestOutboxRejectsBadInput(t *testing.T) {
	o, err := signaling.OpenOutbox(t.TempDir(), newFakePub(), sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "a/b", ".hidden", "nul\x00", strings.Repeat("x", 201)} {
		if err := o.Add(id, bill("x")); err == nil {
			t.Errorf("Add(%q) accepted", id)
		}
	}
	if err := o.Add("ok", []byte("{not json")); err == nil {
		t.Error("Add accepted a payload that is not JSON")
	}
	// The engine's ids: channel-account-device, up to 2x64 byte names.
	long := strings.Repeat("c", 32) + "-" + strings.Repeat("a", 64) + "-" + strings.Repeat("d", 64)
	if err := o.Add(long, bill("x")); err != nil {
		t.Errorf("Add of an engine-sized id: %v", err)
	}
	if err := o.Add("flat@1:é", bill("x")); err != nil {
		t.Errorf("Add of an id with non-ASCII characters: %v", err)
	}
	if _, err := signaling.OpenOutbox(t.TempDir(), nil, nil); err == nil {
		t.Error("OpenOutbox accepted a nil publisher")
	}
}

func TestOutboxTmpAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("00000000000000000002-good.json", `{"id":"good"}`)
	write("00000000000000000003-torn.json", `{"id":"to`)           // power cut mid-write
	write("00000000000000000004-zero.json", "")                    // zero-length after a crash
	write(".tmp-00000000000000000005-partial.json", `{"id":"par`)  // crash before rename
	write("00000000000000000006-old.json.tmp", `{"id":"older-tmp`) // another tmp naming
	write("README", "operator notes")

	pub := newFakePub()
	o, err := signaling.OpenOutbox(dir, pub, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.Pending() != 1 {
		t.Fatalf("pending %d, want 1 (only the good bill)", o.Pending())
	}
	for _, gone := range []string{".tmp-00000000000000000005-partial.json", "00000000000000000006-old.json.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("temporary file %s not removed: %v", gone, err)
		}
	}
	bad, _ := filepath.Glob(filepath.Join(dir, "bad", "*"))
	sort.Strings(bad)
	if len(bad) != 2 || !strings.HasSuffix(bad[0], "-torn.json") || !strings.HasSuffix(bad[1], "-zero.json") {
		t.Fatalf("bad/ holds %v, want the torn and zero files", bad)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("unrelated file touched: %v", err)
	}
	runOutbox(t, o)
	if err := o.Add("next", bill("next")); err != nil {
		t.Fatal(err)
	}
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := pub.delivered(); len(got) != 2 || got[0] != `{"id":"good"}` || got[1] != string(bill("next")) {
		t.Fatalf("delivered %v", got)
	}

	// A file corrupted after open is moved aside when its turn comes.
	pub.setFail(func([]byte) error { return errDown })
	if err := o.Add("later", bill("later")); err != nil {
		t.Fatal(err)
	}
	recv(t, pub.attempts, "attempt")
	files := jsonFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if err := os.WriteFile(files[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Kick()
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if bad, _ := filepath.Glob(filepath.Join(dir, "bad", "*-later.json")); len(bad) != 1 {
		t.Fatalf("corrupted pending bill not moved aside: %v", bad)
	}
}

// TestOutboxBrokerOutage: bills produced while the broker is down are
// delivered through a real client once it is back.
func TestOutboxBrokerOutage(t *testing.T) {
	rb := sigtest.NewRestartableBroker(t)
	prefix := sigtest.Prefix(t)
	var g dialGate
	g.open()
	c := newClient(t, rb.URL(), prefix, door, g.opt, func(c *signaling.ClientConfig) { c.MaxReconnectInterval = 200 * time.Millisecond })
	c.waitUp(t)
	o, err := signaling.OpenOutbox(t.TempDir(), c.Client, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runOutbox(t, o)

	// Delivered while up.
	raw := newRaw(t, rb.URL())
	bills := raw.sub(signaling.Topics{Prefix: prefix}.Device(door, signaling.LeafBill))
	if err := o.Add("before", bill("before")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, bills, "bill before the outage"); string(m.Payload()) != string(bill("before")) {
		t.Fatalf("bill %s", m.Payload())
	}

	g.close()
	rb.Stop()
	recv(t, c.lost, "ConnectionLost")
	const n = 20
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("outage-%d", i)
		if err := o.Add(id, bill(id)); err != nil {
			t.Fatal(err)
		}
	}
	if o.Pending() == 0 {
		t.Fatal("bills delivered with the broker down")
	}
	rb.Start()
	raw = newRaw(t, rb.URL())
	bills = raw.sub(signaling.Topics{Prefix: prefix}.Device(door, signaling.LeafBill))
	g.open()
	c.waitUp(t)
	o.Kick() // what the engine does in Handler.Connected
	seen := map[string]int{}
	for len(seen) < n {
		m := recv(t, bills, "bill after the outage")
		var b struct{ ID string }
		if err := json.Unmarshal(m.Payload(), &b); err != nil {
			t.Fatal(err)
		}
		seen[b.ID]++
	}
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if seen[fmt.Sprintf("outage-%d", i)] < 1 {
			t.Fatalf("bill outage-%d never delivered: %v", i, seen)
		}
	}
}

const envKillChild = "INTERCOMD_TEST_OUTBOX_KILL_CHILD"

// blockPub never acknowledges: the child is killed before any bill is
// published.
type blockPub struct{}

func (blockPub) PublishBill(ctx context.Context, _ []byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestOutboxKill9 re-executes the test binary as a child that stores
// bills and is SIGKILLed before it can publish them; the parent reopens the
// outbox and delivers every bill through a real broker.
func TestOutboxKill9(t *testing.T) {
	if dir := os.Getenv(envKillChild); dir != "" {
		outboxKillChild(dir)
		return
	}
	if os.Getenv("INTERCOMD_QEMU_USER") == "1" {
		t.Skip("qemu-user breaks os/exec")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillChild+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 10
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "STORED" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("child exited before storing bills: %v", sc.Err())
	}()
	if err := recv(t, ready, "child storing bills"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	broker, prefix := sigtest.Broker(t), sigtest.Prefix(t)
	c := newClient(t, broker, prefix, door)
	raw := newRaw(t, broker)
	bills := raw.sub(signaling.Topics{Prefix: prefix}.Device(door, signaling.LeafBill))
	c.waitUp(t)
	o, err := signaling.OpenOutbox(dir, c.Client, sigtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.Pending() != n {
		t.Fatalf("reopened outbox holds %d bills, want %d", o.Pending(), n)
	}
	runOutbox(t, o)
	seen := map[string]bool{}
	for len(seen) < n {
		m := recv(t, bills, "bill after kill -9")
		var b struct{ ID string }
		if err := json.Unmarshal(m.Payload(), &b); err != nil {
			t.Fatal(err)
		}
		seen[b.ID] = true
	}
	if err := o.Flush(sigtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func outboxKillChild(dir string) {
	o, err := signaling.OpenOutbox(dir, blockPub{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	go o.Run(context.Background())
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("killed-%d", i)
		if err := o.Add(id, bill(id)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
	}
	fmt.Println("STORED")
	time.Sleep(time.Hour) // the parent SIGKILLs us
}
