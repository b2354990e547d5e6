// Command intercomd is the intercom daemon: a door station or an indoor
// unit that calls, rings, answers and bills over MQTT + WebRTC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/intercom/media"
	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/systemd"
	"github.com/intercomd/intercomd/web"
)

// version is stamped by the Makefile (-X main.version=...).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "demo" {
		return runDemo(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("intercomd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/intercomd/intercomd.yaml", "configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkConfig := fs.Bool("check-config", false, "validate the configuration and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: intercomd [-config FILE] [-check-config] [-version]\n       intercomd demo [-duration D]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "intercomd %s\n", version)
		return 0
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "intercomd: %v\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 1
	}
	if *checkConfig {
		fmt.Fprintf(stdout, "%s: OK (account %s, device %s, broker %s)\n", *configPath, cfg.Identity.Account, cfg.Identity.Device, cfg.MQTT.Broker)
		return 0
	}
	logger := newLogger(stderr, cfg.Log)
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("intercomd failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// endpointConfig turns the file configuration into the endpoint's.
func endpointConfig(cfg Config, logger *slog.Logger) (intercom.EndpointConfig, error) {
	self := signaling.Address{Account: cfg.Identity.Account, Device: cfg.Identity.Device}
	password := cfg.MQTT.Password
	if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.MQTT.PasswordFile)
		if err != nil {
			return intercom.EndpointConfig{}, fmt.Errorf("mqtt.passwordFile: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	return intercom.EndpointConfig{
		HomeAssistant:   cfg.MQTT.HomeAssistant,
		DiscoveryPrefix: cfg.MQTT.DiscoveryPrefix,
		Engine: intercom.Config{
			Self:            self,
			SessionConfig:   cfg.Session.signaling(),
			AutoAgreeVideo:  cfg.Media.AutoAgreeVideo,
			Preview:         cfg.Media.Preview,
			CallTimeout:     cfg.Calls.CallTimeout,
			RingTimeout:     cfg.Calls.RingTimeout,
			MaxCallDuration: cfg.Calls.MaxDuration,
			ResponseTimeout: cfg.Calls.ResponseTimeout,
			Logger:          logger,
		},
		Client: signaling.ClientConfig{
			Broker:     cfg.MQTT.Broker,
			Username:   cfg.MQTT.Username,
			Password:   password,
			CAFile:     cfg.MQTT.CAFile,
			CertFile:   cfg.MQTT.CertFile,
			KeyFile:    cfg.MQTT.KeyFile,
			Topics:     signaling.Topics{Prefix: cfg.MQTT.Prefix},
			Self:       self,
			ClientType: "intercomd",
			Version:    version,
			KeepAlive:  cfg.MQTT.KeepAlive,
			Logger:     logger,
		},
		OutboxDir: cfg.State.OutboxDir,
	}, nil
}

// serve runs the daemon until ctx ends.
func serve(ctx context.Context, cfg Config, logger *slog.Logger) error {
	notifier := systemd.NewNotifier()
	if cfg.Broker.Enabled {
		b, err := signaling.StartBroker(signaling.BrokerConfig{
			TCPAddr: cfg.Broker.Listen, WSAddr: cfg.Broker.WebSocket, Users: cfg.Broker.Users, Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer b.Close()
		logger.Info("embedded broker listening", "tcp", b.TCPAddr(), "websocket", b.WSAddr())
	}
	epCfg, err := endpointConfig(cfg, logger)
	if err != nil {
		return err
	}
	if cfg.Web.Enabled {
		ws, err := web.NewServer(web.Config{
			Listen: cfg.Web.Listen, CertFile: cfg.Web.CertFile, KeyFile: cfg.Web.KeyFile,
			BrokerWS: cfg.Web.BrokerWS, Prefix: cfg.MQTT.Prefix, Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		webCtx, stopWeb := context.WithCancel(ctx)
		webDone := make(chan struct{})
		go func() {
			defer close(webDone)
			if err := ws.Serve(webCtx); err != nil && webCtx.Err() == nil {
				logger.Error("web server stopped", "err", err)
			}
		}()
		defer func() { stopWeb(); <-webDone }()
		logger.Info("indoor-unit page", "url", ws.URL())
	}
	if cfg.Media.Enabled {
		// One media engine per process: its DTLS certificate is made here,
		// once, not on the answer path of every call.
		me, err := newMediaEngine(cfg.Media, logger)
		if err != nil {
			return err
		}
		devs, err := openDevices(cfg, logger)
		if err != nil {
			return err
		}
		defer devs.Close()
		epCfg.Engine.Media = &intercom.PionMedia{Engine: me, Devices: devs.forCall, SendVideo: devs.sendsVideo(), RecordDir: cfg.Media.RecordDir}
	}
	var pan *panel
	epCfg.Commands = map[string]func(context.Context, signaling.Request) (any, error){
		"press": func(ctx context.Context, req signaling.Request) (any, error) {
			return nil, pan.Press(ctx, req.Button, req.Long)
		},
		"unlock": func(ctx context.Context, _ signaling.Request) (any, error) { return nil, pan.Unlock(ctx) },
	}
	ep, err := intercom.NewEndpoint(epCfg)
	if err != nil {
		return err
	}
	if pan, err = openPanel(cfg, ep.Engine, logger); err != nil {
		return err
	}
	pan.stdin = os.Stdin
	defer pan.Close()
	panelCtx, stopPanel := context.WithCancel(ctx)
	panelDone := make(chan struct{})
	go func() { defer close(panelDone); pan.Run(panelCtx) }()
	defer func() { stopPanel(); <-panelDone }()
	runErr := make(chan error, 1)
	go func() { runErr <- ep.Run(ctx) }()

	// READY=1 only once the broker connection is up.
	if err := ep.Client.WaitConnected(ctx); err != nil {
		return errors.Join(err, <-runErr)
	}
	logger.Info("intercomd ready", "account", cfg.Identity.Account, "device", cfg.Identity.Device, "version", version)
	if err := notifier.Ready(); err != nil {
		logger.Warn("systemd notify READY failed", "err", err)
	}
	if err := notifier.Status("connected, idle"); err != nil {
		logger.Warn("systemd notify STATUS failed", "err", err)
	}
	watchdogDone := make(chan struct{})
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	go func() {
		defer close(watchdogDone)
		// Pings only while the engine loop answers: a wedged engine gets restarted.
		if err := systemd.RunWatchdog(wdCtx, notifier, ep.Engine.Ping); err != nil && wdCtx.Err() == nil {
			logger.Error("watchdog stopped", "err", err)
		}
	}()
	select {
	case <-ctx.Done():
		// Tell systemd at once: the goodbye (hangup, outbox flush) takes a moment.
		if err := notifier.Stopping(); err != nil {
			logger.Warn("systemd notify STOPPING failed", "err", err)
		}
		err = <-runErr
	case err = <-runErr:
	}
	stopWatchdog()
	<-watchdogDone
	return err
}

func newMediaEngine(c MediaConfig, logger *slog.Logger) (*media.Engine, error) {
	servers := make([]media.ICEServer, len(c.ICEServers))
	for i, s := range c.ICEServers {
		servers[i] = media.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
	}
	me, err := media.NewEngine(media.Config{
		ICEServers:             servers,
		ICEDisconnectedTimeout: c.ICEDisconnectedTimeout,
		ICEFailedTimeout:       c.ICEFailedTimeout,
		UDPPortMin:             c.UDPPortMin,
		UDPPortMax:             c.UDPPortMax,
		LoopbackOnly:           c.LoopbackOnly,
		Logger:                 logger,
	})
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	return me, nil
}
