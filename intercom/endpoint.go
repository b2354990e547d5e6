package intercom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// EndpointConfig wires one device: engine, MQTT client and bill outbox.
type EndpointConfig struct {
	Engine    Config // Self, timeouts, clock, logger; Bills and OnEvent are set by the endpoint
	Client    signaling.ClientConfig
	OutboxDir string
	// HomeAssistant publishes Home Assistant MQTT discovery configs after
	// every connect, under DiscoveryPrefix (default "homeassistant").
	HomeAssistant   bool
	DiscoveryPrefix string
	// Commands adds request actions beyond the engine's (the daemon's
	// "press" and "unlock"); they run like the built-in ones.
	Commands map[string]func(ctx context.Context, req signaling.Request) (any, error)
	// WrapBills, if set, wraps the client as the outbox's publisher (tests
	// gate it; a deployment could mirror bills elsewhere).
	WrapBills func(signaling.BillPublisher) signaling.BillPublisher
	// ShutdownTimeout bounds the goodbye on exit: hangup, outbox flush,
	// offline presence (default 5 s).
	ShutdownTimeout time.Duration
}

// Endpoint is one intercom device on the network: it owns the engine, the
// signalling client and the bill outbox, and their goroutines.
type Endpoint struct {
	Engine *Engine
	Client *signaling.Client
	Outbox *signaling.Outbox

	cfg EndpointConfig
	log *slog.Logger
	wg  sync.WaitGroup // command handlers in flight
}

// NewEndpoint validates the configuration and builds the parts; Run starts them.
func NewEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.Client.Self == (signaling.Address{}) {
		cfg.Client.Self = cfg.Engine.Self
	}
	if cfg.Engine.Self == (signaling.Address{}) {
		cfg.Engine.Self = cfg.Client.Self
	}
	if cfg.Client.Self != cfg.Engine.Self {
		return nil, errors.New("intercom: engine and client identities differ")
	}
	if cfg.Client.Logger == nil {
		cfg.Client.Logger = cfg.Engine.Logger
	}
	ep := &Endpoint{cfg: cfg, log: cfg.Engine.Logger}

	var err error
	ep.Client, err = signaling.NewClient(cfg.Client, signaling.Handler{
		Message:  func(env signaling.Envelope) { ep.Engine.HandleMessage(env) },
		Presence: func(p signaling.Presence) { ep.Engine.HandlePresence(p) },
		Request:  ep.handleRequest,
		Connected: func() {
			if ep.Outbox != nil {
				ep.Outbox.Kick()
			}
			if ep.Engine != nil {
				ep.Engine.Reconnected()
			}
			ep.publishDiscovery()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("signaling: %w", err)
	}
	if cfg.OutboxDir == "" {
		return nil, errors.New("intercom: outbox directory is required (bills are never kept only in memory)")
	}
	var pub signaling.BillPublisher = ep.Client
	if cfg.WrapBills != nil {
		pub = cfg.WrapBills(pub)
	}
	ep.Outbox, err = signaling.OpenOutbox(cfg.OutboxDir, pub, cfg.Engine.Logger)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	engCfg := cfg.Engine
	engCfg.Bills = billsToOutbox{ep.Outbox}
	userOnEvent := engCfg.OnEvent
	engCfg.OnEvent = func(ev Event) {
		ep.publishEvent(ev)
		if userOnEvent != nil {
			userOnEvent(ev)
		}
	}
	ep.Engine, err = New(engCfg, ep.Client)
	if err != nil {
		return nil, err
	}
	return ep, nil
}

// publishDiscovery announces the device to Home Assistant; retained, so
// it is repeated after every connect in case the broker lost it.
func (ep *Endpoint) publishDiscovery() {
	if !ep.cfg.HomeAssistant {
		return
	}
	msgs, err := signaling.HomeAssistantDiscovery(ep.cfg.Client.Topics, ep.cfg.Client.Self, ep.cfg.Client.Version, ep.cfg.DiscoveryPrefix)
	if err != nil {
		ep.log.Error("home assistant discovery", "err", err)
		return
	}
	for _, m := range msgs {
		if err := ep.Client.PublishRetained(m.Topic, m.Payload); err != nil {
			ep.log.Warn("home assistant discovery not published", "topic", m.Topic, "err", err)
		}
	}
}

type billsToOutbox struct{ o *signaling.Outbox }

func (b billsToOutbox) AddBill(bill Bill) error {
	data, err := json.Marshal(bill)
	if err != nil {
		return fmt.Errorf("encode bill %s: %w", bill.ID, err)
	}
	return b.o.Add(bill.ID, data)
}

// publishEvent mirrors engine events onto MQTT: state as the retained
// state topic, everything (bills included) on the event stream.
func (ep *Endpoint) publishEvent(ev Event) {
	if ev.Name == EvState {
		s := ev.Data.(StateInfo)
		ep.Client.SetState(signaling.CallState{V: 1, State: string(s.State), Channel: s.ChannelID, Peer: s.Peer, CallType: s.Type, Since: s.Since})
	}
	if err := ep.Client.PublishEvent(signaling.Event{V: 1, Event: ev.Name, Time: ev.Time.UnixMilli(), Data: ev.MarshalData()}); err != nil {
		ep.log.Debug("event not published", "event", ev.Name, "err", err)
	}
}

// Run starts everything and blocks until ctx ends; then it hangs up an
// active call, flushes the outbox and leaves with offline presence.
func (ep *Endpoint) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if err := ep.Client.Start(runCtx); err != nil {
		return fmt.Errorf("signaling: %w", err)
	}
	// Publish the initial retained state once connected.
	ep.publishEvent(Event{Name: EvState, Time: ep.Engine.cfg.Clock.Now(), Data: ep.Engine.state})

	outboxCtx, stopOutbox := context.WithCancel(runCtx)
	defer stopOutbox()
	outboxDone := make(chan struct{})
	go func() { defer close(outboxDone); ep.Outbox.Run(outboxCtx) }()
	engCtx, stopEngine := context.WithCancel(runCtx)
	engineDone := make(chan error, 1)
	go func() { engineDone <- ep.Engine.Run(engCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-engineDone:
	}
	// Goodbye: the engine hangs up (its last bill lands in the outbox),
	// the outbox gets a bounded chance to publish, then offline presence.
	stopEngine()
	if runErr == nil {
		runErr = <-engineDone
	}
	ep.wg.Wait()
	byeCtx, byeCancel := context.WithTimeout(context.Background(), ep.cfg.ShutdownTimeout)
	defer byeCancel()
	if err := ep.Outbox.Flush(byeCtx); err != nil {
		ep.log.Warn("bills left in the outbox for the next start", "pending", ep.Outbox.Pending(), "err", err)
	}
	stopOutbox()
	<-outboxDone
	if err := ep.Client.Close(byeCtx); err != nil {
		ep.log.Warn("signaling close", "err", err)
	}
	return runErr
}
