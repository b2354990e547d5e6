package signaling

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Client defaults.
const (
	DefaultKeepAlive            = 5 * time.Second
	DefaultMaxReconnectInterval = 5 * time.Second
	DefaultOutboundQueue        = 1024

	// initialBackoff is the first pause before a reconnect attempt.
	initialBackoff = 100 * time.Millisecond
	// stableConnection is how long a connection must last before the
	// backoff starts again from initialBackoff; a broker that accepts and
	// then drops us at once (a duplicate device id taking the session over)
	// must not make us reconnect ten times a second forever.
	stableConnection = 10 * time.Second
	// ackTimeout bounds the wait for a PUBACK/SUBACK on a connection paho
	// still believes is up. Paho's keepalive notices a dead broker within
	// about two keepalives; this is the backstop.
	ackTimeout = 10 * time.Second
	// connectTimeout bounds one CONNECT attempt (TCP, TLS, CONNACK).
	connectTimeout = 10 * time.Second
	// eventBuffer bounds events waiting to be written; beyond it events are
	// dropped rather than delaying the caller (the call engine).
	eventBuffer = 256
	// writeTimeout bounds paho's wait to hand a packet to a wedged
	// connection; Publish blocks that long at most.
	writeTimeout = 5 * time.Second
	// maxInbound bounds the messages waiting for the handler goroutine, so a
	// flooding peer cannot grow memory without limit while a handler blocks.
	maxInbound = 16384
)

// Errors returned by the client.
var (
	ErrNotConnected = errors.New("not connected to the MQTT broker")
	ErrClosed       = errors.New("signaling client closed")
)

// ClientConfig configures a Client. Zero values take the defaults above.
type ClientConfig struct {
	Broker             string // tcp://host:port, ssl://, ws://, wss://
	Username, Password string
	// CAFile, CertFile and KeyFile configure broker TLS (ssl:// and wss://
	// only): the CA that signed the broker's certificate (system roots when
	// empty) and an optional client certificate.
	CAFile, CertFile, KeyFile string
	Topics                    Topics
	Self                      Address // this device
	ClientType, Version       string  // published in presence
	// KeepAlive is the MQTT keepalive; the broker fires our last will
	// within 1.5x this after we vanish. Whole seconds, at least 1 s.
	KeepAlive            time.Duration
	MaxReconnectInterval time.Duration
	OutboundQueue        int // messages kept while disconnected
	Logger               *slog.Logger

	// openConn replaces paho's dialer; tests use it to reach the
	// underlying net.Conn and kill it abruptly.
	openConn paho.OpenConnectionFunc
}

// Handler receives what the client hears. The callbacks run on one
// goroutine owned by the client, in arrival order, so a handler never races
// with another; a handler that blocks delays the ones after it (but never
// the network: messages queue up to maxInbound).
type Handler struct {
	// Message gets valid envelopes addressed to us on our account's call
	// topic or our inbox. Our own messages are not delivered.
	Message func(Envelope)
	// Presence gets every presence update of any device (retained included).
	Presence func(Presence)
	// Request gets valid commands from our request topic.
	Request func(Request)
	// Connected runs after every (re)connect, once subscriptions are in
	// place and presence and state are re-published.
	Connected func()
	// ConnectionLost runs when an established connection drops.
	ConnectionLost func(error)
}

// Client keeps one MQTT 3.1.1 connection alive for a device: it
// reconnects with backoff, re-subscribes, re-publishes presence and state,
// and sends queued messages in order.
type Client struct {
	cfg      ClientConfig
	h        Handler
	log      *slog.Logger
	session  string
	clientID string

	mu      sync.Mutex
	started bool
	closing bool
	pc      paho.Client   // the live connection, nil while disconnected
	connCh  chan struct{} // closed while connected
	downCh  chan struct{} // closed when the current connection drops
	state   []byte        // last SetState payload, re-published on reconnect
	out     []outMsg      // ordered outbound queue
	outSeq  uint64
	outWake chan struct{}
	idleCh  chan struct{} // closed while the outbound queue is empty
	idle    bool          // idleCh is closed
	events  chan []byte   // QoS 0 events for eventLoop
	in      []inEvent
	inWake  chan struct{}
	closed  bool
	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type outMsg struct {
	seq     uint64
	topic   string
	payload []byte
	retain  bool
	what    string // for logs: the envelope type or topic leaf
}

type inEvent struct {
	env      *Envelope
	presence *Presence
	request  *Request
	lost     error
	up       bool
}

// NewClient validates cfg (errors name the offending field) and returns a
// client that does nothing until Start.
func NewClient(cfg ClientConfig, h Handler) (*Client, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	var sid [8]byte
	if _, err := rand.Read(sid[:]); err != nil {
		return nil, fmt.Errorf("generate presence session id: %w", err)
	}
	c := &Client{
		cfg:      cfg,
		h:        h,
		session:  hex.EncodeToString(sid[:]),
		clientID: clientIDFor(cfg.Self),
		connCh:   make(chan struct{}),
		outWake:  make(chan struct{}, 1),
		idleCh:   make(chan struct{}),
		inWake:   make(chan struct{}, 1),
	}
	close(c.idleCh)
	c.idle = true
	c.events = make(chan []byte, eventBuffer)
	c.log = cfg.Logger.With("component", "signaling", "self", cfg.Self.String())
	return c, nil
}

// clientIDFor derives a stable MQTT client id from the device address. It
// is stable so that a reconnect takes over a half-open previous session at
// once (the broker then fires that session's will before our new online
// presence, not after), and short because MQTT 3.1.1 only guarantees 23
// bytes and some brokers (VerneMQ: 100) enforce limits below 2x64.
func clientIDFor(a Address) string {
	sum := sha256.Sum256([]byte(a.Account + "/" + a.Device))
	return "icd-" + hex.EncodeToString(sum[:])[:19]
}

func (cfg *ClientConfig) normalize() error {
	if cfg.Broker == "" {
		return errors.New("signaling config: Broker is empty")
	}
	u, err := url.Parse(cfg.Broker)
	if err != nil {
		return fmt.Errorf("signaling config: Broker %q: %w", cfg.Broker, err)
	}
	tlsScheme := false
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts", "wss":
		tlsScheme = true
	case "ws":
	default:
		return fmt.Errorf("signaling config: Broker %q: scheme %q is not tcp, ssl, ws or wss", cfg.Broker, u.Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return fmt.Errorf("signaling config: Broker %q: want scheme://host:port", cfg.Broker)
	}
	if !tlsScheme && (cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "") {
		return fmt.Errorf("signaling config: CAFile/CertFile/KeyFile are set but Broker %q does not use TLS (use ssl:// or wss://)", cfg.Broker)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return errors.New("signaling config: CertFile and KeyFile must be set together")
	}
	if err := ValidateName("Self.Account", cfg.Self.Account); err != nil {
		return fmt.Errorf("signaling config: %w", err)
	}
	if err := ValidateName("Self.Device", cfg.Self.Device); err != nil {
		return fmt.Errorf("signaling config: %w", err)
	}
	if err := validatePrefix(cfg.Topics.Prefix); err != nil {
		return fmt.Errorf("signaling config: Topics.Prefix: %w", err)
	}
	switch {
	case cfg.KeepAlive == 0:
		cfg.KeepAlive = DefaultKeepAlive
	case cfg.KeepAlive < time.Second || cfg.KeepAlive > 65535*time.Second:
		return fmt.Errorf("signaling config: KeepAlive %s is outside 1s..65535s", cfg.KeepAlive)
	}
	cfg.KeepAlive = cfg.KeepAlive.Round(time.Second)
	switch {
	case cfg.MaxReconnectInterval == 0:
		cfg.MaxReconnectInterval = DefaultMaxReconnectInterval
	case cfg.MaxReconnectInterval < initialBackoff:
		return fmt.Errorf("signaling config: MaxReconnectInterval %s is below %s", cfg.MaxReconnectInterval, initialBackoff)
	}
	switch {
	case cfg.OutboundQueue == 0:
		cfg.OutboundQueue = DefaultOutboundQueue
	case cfg.OutboundQueue < 0:
		return fmt.Errorf("signaling config: OutboundQueue %d is negative", cfg.OutboundQueue)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return nil
}

// validatePrefix checks a topic prefix: one or more non-empty levels
// without wildcards (it is used in subscriptions, where + and # would
// widen them).
func validatePrefix(p string) error {
	if p == "" {
		return nil // DefaultPrefix
	}
	if strings.ContainsAny(p, "+#\x00") {
		return fmt.Errorf("%q contains + # or NUL", p)
	}
	if strings.HasPrefix(p, "$") {
		return fmt.Errorf("%q starts with $, reserved for broker topics", p)
	}
	for _, l := range strings.Split(p, "/") {
		if l == "" {
			return fmt.Errorf("%q has an empty level (leading, trailing or double /)", p)
		}
	}
	return nil
}

// Session is this client's presence session id, random per NewClient.
func (c *Client) Session() string { return c.session }

// ClientID is the MQTT client id the client connects with.
func (c *Client) ClientID() string { return c.clientID }

// Start begins connecting in the background; the broker may be down. It
// returns only configuration (TLS) errors. Cancelling ctx stops the client
// like Close without the flush.
func (c *Client) Start(ctx context.Context) error {
	tlsConf, err := loadTLS(c.cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("signaling client already started")
	}
	if c.closing {
		return ErrClosed
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.runCtx = ctx
	c.wg.Add(4)
	go func() { defer c.wg.Done(); c.supervise(ctx, tlsConf) }()
	go func() { defer c.wg.Done(); c.eventLoop(ctx) }()
	go func() { defer c.wg.Done(); c.sendLoop(ctx) }()
	go func() { defer c.wg.Done(); c.dispatchLoop(ctx) }()
	return nil
}

// WaitConnected blocks until the client is connected (subscriptions in
// place) or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	c.mu.Lock()
	ch := c.connCh
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for MQTT connection: %w", ctx.Err())
	}
}

// Connected reports whether the client is connected right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pc != nil
}

// Send queues env for its recipient: the account call topic when
// env.To.Device is empty (every device of the account), else the device's
// inbox. The caller sets Payload; an empty From becomes Self (another From
// is an error) and a zero Time now. Send never waits for
// the network: messages go out in order, QoS 1, retried until the broker
// acknowledges them (so a receiver may see one twice and must de-duplicate
// by ID), and are kept while disconnected.
func (c *Client) Send(env Envelope) error {
	if env.From == (Address{}) {
		env.From = c.cfg.Self
	}
	if env.From != c.cfg.Self {
		// Every receiver would drop it (the topic names us as sender).
		return fmt.Errorf("send %s: from %s is not this device %s", env.Type, env.From, c.cfg.Self)
	}
	if env.Time == 0 {
		env.Time = time.Now().UnixMilli()
	}
	data, err := Encode(env)
	if err != nil {
		return err
	}
	var topic string
	if env.To.Device == "" {
		topic = c.cfg.Topics.AccountCall(env.To.Account, c.cfg.Self)
	} else {
		topic = c.cfg.Topics.Inbox(env.To, c.cfg.Self)
	}
	return c.enqueue(outMsg{topic: topic, payload: data, what: string(env.Type)})
}

// SetState publishes the device's call state (retained, QoS 1) and
// remembers it for re-publication after every reconnect.
func (c *Client) SetState(s CallState) {
	if s.V == 0 {
		s.V = Version
	}
	data, err := json.Marshal(s)
	if err != nil {
		// CallState holds only strings and numbers; cannot happen.
		c.log.Error("encode call state", "error", err)
		return
	}
	c.mu.Lock()
	c.state = data
	c.mu.Unlock()
	if err := c.enqueue(outMsg{topic: c.cfg.Topics.Device(c.cfg.Self, LeafState), payload: data, retain: true, what: LeafState}); err != nil {
		c.log.Warn("publish call state", "error", err)
	}
}

// PublishEvent publishes one event (QoS 0, not retained): a monitoring
// stream where a lost event is acceptable and a stale one is not, so it is
// not queued while disconnected.
func (c *Client) PublishEvent(ev Event) error {
	if ev.V == 0 {
		ev.V = Version
	}
	if ev.Time == 0 {
		ev.Time = time.Now().UnixMilli()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %q: %w", ev.Event, err)
	}
	if !c.Connected() {
		return fmt.Errorf("publish event %q: %w", ev.Event, ErrNotConnected)
	}
	select {
	case c.events <- data:
		return nil
	default:
		return fmt.Errorf("publish event %q: %d events waiting for the network, dropped", ev.Event, eventBuffer)
	}
}

// eventLoop writes events so PublishEvent never waits for the network
// (paho's Publish can block on a wedged connection).
func (c *Client) eventLoop(ctx context.Context) {
	topic := c.cfg.Topics.Device(c.cfg.Self, LeafEvent)
	for {
		select {
		case data := <-c.events:
			c.mu.Lock()
			pc := c.pc
			c.mu.Unlock()
			if pc != nil {
				// QoS 0: nothing to wait for.
				pc.Publish(topic, 0, false, data)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Respond queues a command response (QoS 1) on our response topic.
func (c *Client) Respond(r CommandResponse) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode command response: %w", err)
	}
	return c.enqueue(outMsg{topic: c.cfg.Topics.Device(c.cfg.Self, LeafResponse), payload: data, what: LeafResponse})
}

// PublishRetained queues a retained QoS 1 message on any topic (Home
// Assistant discovery). Like Send it never blocks on the network.
func (c *Client) PublishRetained(topic string, payload []byte) error {
	return c.enqueue(outMsg{topic: topic, payload: payload, retain: true, what: "retained"})
}

// PublishBill publishes a call record on our bill topic (QoS 1) and
// returns nil only once the broker acknowledged it (PUBACK). It fails at
// once when disconnected; the Outbox retries.
func (c *Client) PublishBill(ctx context.Context, payload []byte) error {
	c.mu.Lock()
	pc := c.pc
	c.mu.Unlock()
	if pc == nil {
		return fmt.Errorf("publish bill: %w", ErrNotConnected)
	}
	tok := pc.Publish(c.cfg.Topics.Device(c.cfg.Self, LeafBill), 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish bill: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish bill: waiting for PUBACK: %w", ctx.Err())
	}
}

// Close flushes the outbound queue (bounded by ctx), publishes retained
// offline presence and disconnects. It returns an error when messages were
// left unsent.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	started := c.started
	idle := c.idleCh
	pending := len(c.out)
	c.mu.Unlock()
	if !started {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		return nil
	}
	var flushErr error
	if pending > 0 {
		select {
		case <-idle:
		case <-c.runCtx.Done():
			flushErr = fmt.Errorf("close signaling client: %d queued messages unsent: stopped before Close: %w", pending, c.runCtx.Err())
		case <-ctx.Done():
			c.mu.Lock()
			n := len(c.out)
			c.mu.Unlock()
			flushErr = fmt.Errorf("close signaling client: %d queued messages unsent: %w", n, ctx.Err())
		}
	}
	// The supervisor publishes offline presence and disconnects on its way
	// out.
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return flushErr
}

func (c *Client) enqueue(m outMsg) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.outSeq++
	m.seq = c.outSeq
	var dropped *outMsg
	if len(c.out) >= c.cfg.OutboundQueue {
		d := c.out[0]
		dropped = &d
		c.out = c.out[1:]
	}
	if len(c.out) == 0 && c.idle {
		c.idleCh = make(chan struct{})
		c.idle = false
	}
	c.out = append(c.out, m)
	c.mu.Unlock()
	if dropped != nil {
		c.log.Warn("outbound queue full, dropped the oldest message", "limit", c.cfg.OutboundQueue, "dropped", dropped.what, "topic", dropped.topic)
	}
	wake(c.outWake)
	return nil
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sendLoop is the one goroutine that publishes the outbound queue, oldest
// first, waiting for each PUBACK so the order survives reconnects.
func (c *Client) sendLoop(ctx context.Context) {
	retry := time.NewTimer(0)
	<-retry.C
	for {
		c.mu.Lock()
		var m outMsg
		have := len(c.out) > 0
		if have {
			m = c.out[0]
		}
		pc, connCh, downCh := c.pc, c.connCh, c.downCh
		c.mu.Unlock()
		if !have {
			select {
			case <-c.outWake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if pc == nil {
			select {
			case <-connCh:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := awaitToken(ctx, pc.Publish(m.topic, 1, m.retain, m.payload), ackTimeout)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("publish failed, will retry", "what", m.what, "topic", m.topic, "error", err)
			// Retry the same message once the connection is replaced (paho
			// fails in-flight tokens when it drops), or after a moment if
			// this connection stays up.
			retry.Reset(time.Second)
			select {
			case <-retry.C:
			case <-downCh:
				if !retry.Stop() {
					<-retry.C
				}
			case <-ctx.Done():
				return
			}
			continue
		}
		c.mu.Lock()
		// The message may have been dropped (queue full) while in flight.
		if len(c.out) > 0 && c.out[0].seq == m.seq {
			c.out = c.out[1:]
		}
		if len(c.out) == 0 && !c.idle {
			c.out = nil // let the backing array go
			close(c.idleCh)
			c.idle = true
		}
		c.mu.Unlock()
	}
}

// awaitToken waits for a paho token, at most timeout.
func awaitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no acknowledgement within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// supervise owns the connection: connect, set up, wait for loss, back off,
// repeat, until ctx ends.
func (c *Client) supervise(ctx context.Context, tlsConf tlsConfig) {
	backoff := initialBackoff
	attempt := 0
	for {
		attempt++
		lost := make(chan error, 1)
		pc, since, err := c.connect(ctx, tlsConf, lost)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			lvl := slog.LevelDebug
			if attempt == 1 || attempt%20 == 0 {
				lvl = slog.LevelWarn // not every 5 s for hours of outage
			}
			c.log.Log(ctx, lvl, "MQTT connect failed", "broker", c.cfg.Broker, "attempt", attempt, "retry_in", backoff, "error", err)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, c.cfg.MaxReconnectInterval)
			continue
		}
		c.log.Info("MQTT connected", "broker", c.cfg.Broker, "attempt", attempt, "session", c.session)
		attempt = 0
		c.mu.Lock()
		c.pc = pc
		close(c.connCh)
		c.downCh = make(chan struct{})
		c.mu.Unlock()
		c.pushIn(inEvent{up: true})

		var lostErr error
		select {
		case lostErr = <-lost:
		case <-ctx.Done():
			c.shutdown(pc)
			return
		}
		c.mu.Lock()
		c.pc = nil
		c.connCh = make(chan struct{})
		close(c.downCh)
		c.mu.Unlock()
		c.log.Warn("MQTT connection lost", "broker", c.cfg.Broker, "error", lostErr)
		c.pushIn(inEvent{lost: lostErr})
		if time.Since(since) >= stableConnection {
			backoff = initialBackoff
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, c.cfg.MaxReconnectInterval)
	}
}

// shutdown publishes offline presence and disconnects gracefully (so the
// broker discards our will: the explicit offline replaces it).
func (c *Client) shutdown(pc paho.Client) {
	data := c.presence(Offline, time.Now())
	tok := pc.Publish(c.cfg.Topics.Device(c.cfg.Self, LeafPresence), 1, true, data)
	if err := awaitToken(context.Background(), tok, 2*time.Second); err != nil {
		c.log.Warn("publish offline presence", "error", err)
	}
	pc.Disconnect(250)
	c.mu.Lock()
	c.pc = nil
	c.connCh = make(chan struct{})
	close(c.downCh)
	c.mu.Unlock()
	c.log.Info("MQTT disconnected")
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) presence(state string, since time.Time) []byte {
	data, _ := json.Marshal(Presence{
		V:          Version,
		State:      state,
		Account:    c.cfg.Self.Account,
		Device:     c.cfg.Self.Device,
		Session:    c.session,
		ClientType: c.cfg.ClientType,
		Version:    c.cfg.Version,
		Since:      since.UnixMilli(),
	})
	return data
}

// connect makes one connection attempt with a fresh paho client (its own
// reconnect logic is off: this loop owns backoff and re-setup), then
// subscribes and publishes presence and the last state. It returns the
// connection time.
func (c *Client) connect(ctx context.Context, tlsConf tlsConfig, lost chan error) (paho.Client, time.Time, error) {
	now := time.Now()
	presTopic := c.cfg.Topics.Device(c.cfg.Self, LeafPresence)
	opts := paho.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(c.clientID).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, no fallback to 3.1
		SetCleanSession(true).
		SetKeepAlive(c.cfg.KeepAlive).
		SetPingTimeout(c.cfg.KeepAlive).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true). // handlers in arrival order; ours only enqueue
		SetBinaryWill(presTopic, c.presence(Offline, now), 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if tlsConf.conf != nil {
		opts.SetTLSConfig(tlsConf.conf)
	}
	if c.cfg.openConn != nil {
		opts.SetCustomOpenConnectionFn(c.cfg.openConn)
	}
	pc := paho.NewClient(opts)
	tok := pc.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		pc.Disconnect(0)
		return nil, now, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, now, fmt.Errorf("connect to %s: %w", c.cfg.Broker, err)
	}

	t := c.cfg.Topics
	subs := map[string]byte{
		t.PresenceFilter():                      1,
		t.AccountCallFilter(c.cfg.Self.Account): 1,
		t.InboxFilter(c.cfg.Self):               1,
		t.Device(c.cfg.Self, LeafRequest):       1,
	}
	if err := awaitToken(ctx, pc.SubscribeMultiple(subs, c.onMessage), ackTimeout); err != nil {
		pc.Disconnect(0)
		return nil, now, fmt.Errorf("subscribe: %w", err)
	}
	if err := awaitToken(ctx, pc.Publish(presTopic, 1, true, c.presence(Online, now)), ackTimeout); err != nil {
		pc.Disconnect(0)
		return nil, now, fmt.Errorf("publish online presence: %w", err)
	}
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state != nil {
		if err := awaitToken(ctx, pc.Publish(t.Device(c.cfg.Self, LeafState), 1, true, state), ackTimeout); err != nil {
			pc.Disconnect(0)
			return nil, now, fmt.Errorf("re-publish call state: %w", err)
		}
	}
	return pc, now, nil
}

// onMessage runs on paho's router goroutine for every message, in order.
// It validates and enqueues for the handler goroutine; it never blocks.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), m.Payload()
	t := c.cfg.Topics
	self := c.cfg.Self
	switch {
	case topic == t.Device(self, LeafRequest):
		req, err := DecodeRequest(payload)
		if err != nil {
			c.drop(topic, err)
			return
		}
		c.pushIn(inEvent{request: &req})
	case strings.HasSuffix(topic, "/"+LeafPresence):
		dev, ok := t.PresenceDevice(topic)
		if !ok {
			c.drop(topic, errors.New("not a presence topic"))
			return
		}
		if len(payload) == 0 {
			return // a cleared retained presence: nothing to report
		}
		p, err := DecodePresence(payload, dev)
		if err != nil {
			c.drop(topic, err)
			return
		}
		if dev == self && p.State == Offline {
			c.healPresence(p)
		}
		c.pushIn(inEvent{presence: &p})
	default:
		env, err := c.checkEnvelope(topic, payload)
		if err != nil {
			c.drop(topic, err)
			return
		}
		if env.From == self {
			return // our own invite echoed on our account's call topic
		}
		c.pushIn(inEvent{env: &env})
	}
}

// healPresence re-asserts online presence when a will of an earlier
// connection of ours (half-open, dropped late by the broker) overwrote it.
func (c *Client) healPresence(p Presence) {
	c.mu.Lock()
	live := c.pc != nil && !c.closing
	c.mu.Unlock()
	if !live {
		return
	}
	c.log.Info("our presence was set offline by an earlier connection's will; re-publishing online", "their_session", p.Session)
	_ = c.enqueue(outMsg{topic: c.cfg.Topics.Device(c.cfg.Self, LeafPresence), payload: c.presence(Online, time.Now()), retain: true, what: LeafPresence})
}

func (c *Client) drop(topic string, err error) {
	c.log.Warn("dropped invalid MQTT message", "topic", topic, "error", err)
}

// checkEnvelope decodes a call/inbox message and checks it against its
// topic and us.
func (c *Client) checkEnvelope(topic string, payload []byte) (Envelope, error) {
	t := c.cfg.Topics
	sender, ok := t.Sender(topic)
	if !ok {
		return Envelope{}, errors.New("no sender in topic")
	}
	if topic != t.AccountCall(c.cfg.Self.Account, sender) && topic != t.Inbox(c.cfg.Self, sender) {
		return Envelope{}, errors.New("topic is neither our account call topic nor our inbox")
	}
	env, err := Decode(payload)
	if err != nil {
		return Envelope{}, err
	}
	return env, CheckRoute(env, sender, c.cfg.Self)
}

// Errors of CheckRoute.
var (
	ErrSenderMismatch = errors.New("envelope from does not match the topic's sender")
	ErrNotForUs       = errors.New("envelope is addressed to another endpoint")
)

// CheckRoute checks a decoded envelope against the sender named by its
// topic and the receiving device: a device may only speak as itself, and
// only messages to our account (and our device, when one is named) count.
func CheckRoute(env Envelope, topicSender, self Address) error {
	if env.From != topicSender {
		return fmt.Errorf("%w: from %s, topic sender %s", ErrSenderMismatch, env.From, topicSender)
	}
	if env.To.Account != self.Account || (env.To.Device != "" && env.To.Device != self.Device) {
		return fmt.Errorf("%w: to %s, we are %s", ErrNotForUs, env.To, self)
	}
	return nil
}

func (c *Client) pushIn(ev inEvent) {
	c.mu.Lock()
	if len(c.in) >= maxInbound {
		c.mu.Unlock()
		c.log.Error("inbound queue full, dropped a message: a handler is blocked", "limit", maxInbound)
		return
	}
	c.in = append(c.in, ev)
	c.mu.Unlock()
	wake(c.inWake)
}

// dispatchLoop is the one goroutine that runs the handler callbacks.
func (c *Client) dispatchLoop(ctx context.Context) {
	for {
		select {
		case <-c.inWake:
		case <-ctx.Done():
			return
		}
		for {
			c.mu.Lock()
			batch := c.in
			c.in = nil
			c.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, ev := range batch {
				if ctx.Err() != nil {
					return
				}
				c.deliver(ev)
			}
		}
	}
}

func (c *Client) deliver(ev inEvent) {
	switch {
	case ev.env != nil:
		if c.h.Message != nil {
			c.h.Message(*ev.env)
		}
	case ev.presence != nil:
		if c.h.Presence != nil {
			c.h.Presence(*ev.presence)
		}
	case ev.request != nil:
		if c.h.Request != nil {
			c.h.Request(*ev.request)
		}
	case ev.up:
		if c.h.Connected != nil {
			c.h.Connected()
		}
	default:
		if c.h.ConnectionLost != nil {
			c.h.ConnectionLost(ev.lost)
		}
	}
}

// DecodePresence strictly decodes a presence payload and checks it belongs
// to device (from the topic). Errors wrap the Decode error kinds.
func DecodePresence(data []byte, device Address) (Presence, error) {
	var p Presence
	if len(data) > MaxMessageSize {
		return p, fmt.Errorf("%w: presence of %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	if err := strictUnmarshal(data, &p); err != nil {
		return Presence{}, fmt.Errorf("%w: presence: %v", ErrMalformed, err)
	}
	if p.V != Version {
		return Presence{}, fmt.Errorf("%w: presence v%d", ErrVersion, p.V)
	}
	if p.State != Online && p.State != Offline {
		return Presence{}, fmt.Errorf("%w: presence state %q is neither online nor offline", ErrMalformed, p.State)
	}
	if p.Account != device.Account || p.Device != device.Device {
		return Presence{}, fmt.Errorf("%w: presence of %s/%s on the topic of %s", ErrSenderMismatch, p.Account, p.Device, device)
	}
	if p.Session == "" || len(p.Session) > 64 {
		return Presence{}, fmt.Errorf("%w: presence session must be 1-64 characters", ErrMalformed)
	}
	return p, nil
}

// DecodeRequest strictly decodes a command from a request topic.
func DecodeRequest(data []byte) (Request, error) {
	var r Request
	if len(data) > MaxMessageSize {
		return r, fmt.Errorf("%w: request of %d bytes, limit %d", ErrTooLarge, len(data), MaxMessageSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return Request{}, fmt.Errorf("%w: request: %v", ErrMalformed, err)
	}
	if r.Action == "" {
		return Request{}, fmt.Errorf("%w: request without action", ErrMalformed)
	}
	if len(r.Transaction) > 128 {
		return Request{}, fmt.Errorf("%w: request transaction longer than 128 bytes", ErrMalformed)
	}
	return r, nil
}
