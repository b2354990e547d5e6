package signaling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ControllerConfig configures a Controller: a monitoring and command
// client (intercomctl, the demo, Home Assistant-like tools). It is not a
// device: it publishes no presence and receives no calls.
type ControllerConfig struct {
	Broker                    string
	Username, Password        string
	CAFile, CertFile, KeyFile string
	Topics                    Topics
}

// Controller sends commands to devices and watches their state, events and
// bills.
type Controller struct {
	topics Topics
	pc     paho.Client

	mu         sync.Mutex
	pending    map[string]chan CommandResponse
	subscribed map[string]bool
	// watches are re-subscribed after a reconnect (clean sessions forget them).
	watches     map[string]paho.MessageHandler
	ready       chan struct{} // closed once subscriptions are back after the last connect
	transaction uint64
	prefixID    string
}

// Observation is one message seen by Watch.
type Observation struct {
	Topic   string
	Device  Address
	Kind    string // presence, state, event or bill
	Payload []byte
}

// DialController connects (MQTT 3.1.1, clean session) and returns once
// connected.
func DialController(ctx context.Context, cfg ControllerConfig) (*Controller, error) {
	tlsConf, err := loadTLS(ClientConfig{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile})
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	c := &Controller{
		topics:     cfg.Topics,
		pending:    make(map[string]chan CommandResponse),
		subscribed: make(map[string]bool),
		watches:    make(map[string]paho.MessageHandler),
		ready:      make(chan struct{}),
		prefixID:   hex.EncodeToString(id[:]),
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID("intercomctl-" + c.prefixID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectTimeout(10 * time.Second).
		SetMaxReconnectInterval(2 * time.Second).
		SetOnConnectHandler(c.resubscribe).
		SetConnectionLostHandler(func(paho.Client, error) {
			c.mu.Lock()
			c.ready = make(chan struct{})
			c.mu.Unlock()
		})
	if tlsConf.conf != nil {
		opts.SetTLSConfig(tlsConf.conf)
	}
	c.pc = paho.NewClient(opts)
	if err := awaitToken(ctx, c.pc.Connect(), 10*time.Second); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, err)
	}
	return c, nil
}

// resubscribe restores every subscription after a (re)connect.
func (c *Controller) resubscribe(pc paho.Client) {
	c.mu.Lock()
	var toks []paho.Token
	for topic := range c.subscribed {
		toks = append(toks, pc.Subscribe(topic, 1, c.onResponse))
	}
	for filter, h := range c.watches {
		toks = append(toks, pc.Subscribe(filter, 1, h))
	}
	ready := c.ready
	c.mu.Unlock()
	// paho runs this handler on its own goroutine: waiting here is fine.
	go func() {
		for _, t := range toks {
			t.WaitTimeout(10 * time.Second)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		select {
		case <-ready:
		default:
			close(ready)
		}
	}()
}

// WaitReady returns once the controller is connected with every
// subscription in place (after a reconnect, once they are restored).
func (c *Controller) WaitReady(ctx context.Context) error {
	c.mu.Lock()
	ready := c.ready
	c.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("controller not ready: %w", ctx.Err())
	}
}

// Close disconnects.
func (c *Controller) Close() { c.pc.Disconnect(250) }

// Request sends req to device and waits for the matching response.
func (c *Controller) Request(ctx context.Context, device Address, req Request) (CommandResponse, error) {
	respTopic := c.topics.Device(device, LeafResponse)
	c.mu.Lock()
	needSub := !c.subscribed[respTopic]
	c.subscribed[respTopic] = true
	c.transaction++
	if req.Transaction == "" {
		req.Transaction = fmt.Sprintf("%s-%d", c.prefixID, c.transaction)
	}
	ch := make(chan CommandResponse, 1)
	c.pending[req.Transaction] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.Transaction)
		c.mu.Unlock()
	}()
	if needSub {
		if err := awaitToken(ctx, c.pc.Subscribe(respTopic, 1, c.onResponse), 10*time.Second); err != nil {
			c.mu.Lock()
			delete(c.subscribed, respTopic)
			c.mu.Unlock()
			return CommandResponse{}, fmt.Errorf("subscribe %s: %w", respTopic, err)
		}
	}
	data, err := json.Marshal(req)
	if err != nil {
		return CommandResponse{}, fmt.Errorf("encode request: %w", err)
	}
	if err := awaitToken(ctx, c.pc.Publish(c.topics.Device(device, LeafRequest), 1, false, data), 10*time.Second); err != nil {
		return CommandResponse{}, fmt.Errorf("publish request: %w", err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return CommandResponse{}, fmt.Errorf("no response from %s (is intercomd running?): %w", device, ctx.Err())
	}
}

func (c *Controller) onResponse(_ paho.Client, m paho.Message) {
	if len(m.Payload()) > MaxMessageSize {
		return
	}
	var r CommandResponse
	if err := json.Unmarshal(m.Payload(), &r); err != nil {
		return
	}
	c.mu.Lock()
	ch := c.pending[r.Transaction]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- r:
		default:
		}
	}
}

// Subscribe delivers presence, state, events and bills of device (either
// level may be "+"; kinds defaults to all four) to fn, from when it
// returns until stop is called. fn runs on the client's delivery
// goroutine, in order. Subscriptions survive reconnects.
func (c *Controller) Subscribe(ctx context.Context, device Address, kinds []string, fn func(Observation)) (stop func(), err error) {
	if len(kinds) == 0 {
		kinds = []string{LeafPresence, LeafState, LeafEvent, LeafBill}
	}
	handler := func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) > MaxMessageSize {
			return
		}
		addr, kind, ok := c.topics.parseDeviceTopic(m.Topic())
		if !ok {
			return
		}
		fn(Observation{Topic: m.Topic(), Device: addr, Kind: kind, Payload: m.Payload()})
	}
	subs := make(map[string]byte)
	for _, k := range kinds {
		subs[c.topics.Device(device, k)] = 1
	}
	c.mu.Lock()
	for f := range subs {
		c.watches[f] = handler
	}
	c.mu.Unlock()
	filters := make([]string, 0, len(subs))
	for f := range subs {
		filters = append(filters, f)
	}
	stop = func() {
		c.mu.Lock()
		for _, f := range filters {
			delete(c.watches, f)
		}
		c.mu.Unlock()
		c.pc.Unsubscribe(filters...).WaitTimeout(time.Second)
	}
	if err := awaitToken(ctx, c.pc.SubscribeMultiple(subs, handler), 10*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return stop, nil
}

// Watch is Subscribe until ctx ends.
func (c *Controller) Watch(ctx context.Context, device Address, kinds []string, fn func(Observation)) error {
	stop, err := c.Subscribe(ctx, device, kinds, fn)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}

// parseDeviceTopic splits {p}/device/{acct}/{dev}/{leaf}.
func (t Topics) parseDeviceTopic(topic string) (Address, string, bool) {
	rest, ok := strings.CutPrefix(topic, t.p()+"/device/")
	if !ok {
		return Address{}, "", false
	}
	levels := strings.Split(rest, "/")
	if len(levels) != 3 {
		return Address{}, "", false
	}
	return Address{Account: levels[0], Device: levels[1]}, levels[2], true
}
