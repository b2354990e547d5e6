package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/intercomd/intercomd/intercom"
	"github.com/intercomd/intercomd/signaling"
)

// Config is intercomd's YAML configuration. Every key is optional except
// identity; zero values take the defaults in defaultConfig.
type Config struct {
	Identity Identity     `yaml:"identity"`
	MQTT     MQTTConfig   `yaml:"mqtt"`
	Broker   BrokerConfig `yaml:"broker"`
	Calls    CallsConfig  `yaml:"calls"`
	Media    MediaConfig  `yaml:"media"`
	Session  SessionConf  `yaml:"session"`
	Video    VideoConf    `yaml:"video"`
	Audio    AudioConf    `yaml:"audio"`
	Buttons  ButtonsConf  `yaml:"buttons"`
	Outputs  OutputsConf  `yaml:"outputs"`
	Web      WebConf      `yaml:"web"`
	State    StateConfig  `yaml:"state"`
	Log      LogConfig    `yaml:"log"`
}

type Identity struct {
	Account string `yaml:"account"` // the flat or door this device belongs to
	Device  string `yaml:"device"`  // this device, unique within the account
}

type MQTTConfig struct {
	Broker       string        `yaml:"broker"`
	Username     string        `yaml:"username"`
	Password     string        `yaml:"password"`
	PasswordFile string        `yaml:"passwordFile"`
	CAFile       string        `yaml:"caFile"`
	CertFile     string        `yaml:"certFile"`
	KeyFile      string        `yaml:"keyFile"`
	Prefix       string        `yaml:"prefix"`
	KeepAlive    time.Duration `yaml:"keepAlive"`
	// HomeAssistant publishes MQTT discovery so the device shows up in
	// Home Assistant with its call state and answer/reject/hangup buttons.
	HomeAssistant   bool   `yaml:"homeAssistant"`
	DiscoveryPrefix string `yaml:"discoveryPrefix"`
}

// WebConf serves the browser indoor-unit page and SDK.
type WebConf struct {
	Enabled  bool   `yaml:"enabled"`
	Listen   string `yaml:"listen"`   // default 127.0.0.1:8080
	CertFile string `yaml:"certFile"` // HTTPS: browsers allow the microphone off localhost only in a secure context
	KeyFile  string `yaml:"keyFile"`
	BrokerWS string `yaml:"brokerWS"` // the MQTT WebSocket URL pages use; default: this host, port 1884
}

// MediaConfig configures WebRTC.
type MediaConfig struct {
	Enabled                bool          `yaml:"enabled"`
	ICEServers             []ICEServer   `yaml:"iceServers"`
	ICEDisconnectedTimeout time.Duration `yaml:"iceDisconnectedTimeout"`
	ICEFailedTimeout       time.Duration `yaml:"iceFailedTimeout"`
	UDPPortMin             uint16        `yaml:"udpPortMin"`
	UDPPortMax             uint16        `yaml:"udpPortMax"`
	LoopbackOnly           bool          `yaml:"loopbackOnly"`
	RecordDir              string        `yaml:"recordDir"`
	AutoAgreeVideo         bool          `yaml:"autoAgreeVideo"`
	// Preview shows the caller's video while this device rings.
	Preview bool `yaml:"preview"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// SessionConf is this device's sessionConfig (the seed's names).
type SessionConf struct {
	VideoQuality   int  `yaml:"videoQuality"`
	VideoFrameRate int  `yaml:"videoFrameRate"`
	VideoBitrate   int  `yaml:"videoBitrate"`
	RecordAudio    bool `yaml:"recordAudio"`
	RecordVideo    bool `yaml:"recordVideo"`
}

type BrokerConfig struct {
	Enabled   bool              `yaml:"enabled"`
	Listen    string            `yaml:"listen"`
	WebSocket string            `yaml:"websocket"`
	Users     map[string]string `yaml:"users"`
}

type CallsConfig struct {
	CallTimeout     time.Duration `yaml:"callTimeout"`
	RingTimeout     time.Duration `yaml:"ringTimeout"`
	MaxDuration     time.Duration `yaml:"maxDuration"`
	ResponseTimeout time.Duration `yaml:"responseTimeout"`
}

type StateConfig struct {
	OutboxDir string `yaml:"outboxDir"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

func defaultConfig() Config {
	return Config{
		MQTT: MQTTConfig{
			Broker:    "tcp://127.0.0.1:1883",
			Prefix:    signaling.DefaultPrefix,
			KeepAlive: 5 * time.Second,
		},
		Broker: BrokerConfig{
			Listen:    signaling.DefaultBrokerTCPAddr,
			WebSocket: signaling.DefaultBrokerWSAddr,
		},
		Calls: CallsConfig{
			CallTimeout:     30 * time.Second,
			RingTimeout:     60 * time.Second,
			MaxDuration:     2 * time.Hour,
			ResponseTimeout: 5 * time.Second,
		},
		Media: MediaConfig{
			Enabled:                true,
			ICEDisconnectedTimeout: 5 * time.Second,
			ICEFailedTimeout:       10 * time.Second,
			AutoAgreeVideo:         true,
		},
		State: StateConfig{OutboxDir: "/var/lib/intercomd/outbox"},
		Web:   WebConf{Listen: "127.0.0.1:8080"},
		Log:   LogConfig{Level: "info", Format: "text"},
	}
}

// loadConfig reads and validates path. Unknown keys are errors: a typo must
// not silently fall back to a default.
func loadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func parseConfig(data []byte) (Config, error) {
	cfg := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF; validation then names what is missing.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, nameKeys(data, err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// validate returns every problem at once, each naming its key.
func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := signaling.ValidateName("identity.account", c.Identity.Account); err != nil {
		bad("identity.account", "%v", trimField(err))
	}
	if err := signaling.ValidateName("identity.device", c.Identity.Device); err != nil {
		bad("identity.device", "%v", trimField(err))
	}
	switch {
	case c.MQTT.Broker == "":
		bad("mqtt.broker", "is empty")
	case !hasAnyPrefix(c.MQTT.Broker, "tcp://", "ssl://", "tls://", "mqtts://", "ws://", "wss://"):
		bad("mqtt.broker", "%q must start with tcp://, ssl://, ws:// or wss://", c.MQTT.Broker)
	}
	if c.MQTT.Password != "" && c.MQTT.PasswordFile != "" {
		bad("mqtt.passwordFile", "set either mqtt.password or mqtt.passwordFile, not both")
	}
	for key, f := range map[string]string{"mqtt.caFile": c.MQTT.CAFile, "mqtt.certFile": c.MQTT.CertFile, "mqtt.keyFile": c.MQTT.KeyFile, "mqtt.passwordFile": c.MQTT.PasswordFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		bad("mqtt.certFile", "a client certificate needs both mqtt.certFile and mqtt.keyFile")
	}
	if c.MQTT.Prefix == "" || strings.ContainsAny(c.MQTT.Prefix, "+#") || strings.HasPrefix(c.MQTT.Prefix, "/") || strings.HasSuffix(c.MQTT.Prefix, "/") {
		bad("mqtt.prefix", "%q must be non-empty, without + or #, and not start or end with /", c.MQTT.Prefix)
	}
	if c.MQTT.KeepAlive < time.Second {
		bad("mqtt.keepAlive", "%s is shorter than 1s", c.MQTT.KeepAlive)
	}
	if c.Broker.Enabled && c.Broker.Listen == "" {
		bad("broker.listen", "is empty while broker.enabled is true")
	}
	positive := map[string]time.Duration{
		"calls.callTimeout": c.Calls.CallTimeout, "calls.ringTimeout": c.Calls.RingTimeout,
		"calls.maxDuration": c.Calls.MaxDuration, "calls.responseTimeout": c.Calls.ResponseTimeout,
	}
	for key, d := range positive {
		if d <= 0 {
			bad(key, "must be a positive duration such as 30s, got %s", d)
		}
	}
	if c.Media.ICEDisconnectedTimeout <= 0 {
		bad("media.iceDisconnectedTimeout", "must be a positive duration, got %s", c.Media.ICEDisconnectedTimeout)
	}
	if c.Media.ICEFailedTimeout <= 0 {
		bad("media.iceFailedTimeout", "must be a positive duration, got %s", c.Media.ICEFailedTimeout)
	}
	if (c.Media.UDPPortMin == 0) != (c.Media.UDPPortMax == 0) || c.Media.UDPPortMin > c.Media.UDPPortMax {
		bad("media.udpPortMin", "udpPortMin and udpPortMax must both be set, min ≤ max (got %d-%d)", c.Media.UDPPortMin, c.Media.UDPPortMax)
	}
	for i, s := range c.Media.ICEServers {
		key := fmt.Sprintf("media.iceServers[%d].urls", i)
		if len(s.URLs) == 0 {
			bad(key, "is empty")
		}
		for _, u := range s.URLs {
			if !hasAnyPrefix(u, "stun:", "stuns:", "turn:", "turns:") {
				bad(key, "%q must start with stun:, stuns:, turn: or turns:", u)
			} else if hasAnyPrefix(u, "turn:", "turns:") && (s.Username == "" || s.Credential == "") {
				bad(fmt.Sprintf("media.iceServers[%d]", i), "TURN server %q needs username and credential", u)
			}
		}
	}
	if _, err := intercom.VideoConfigFor(c.Session.signaling()); err != nil {
		bad("session", "%v", err)
	}
	if (c.Session.RecordAudio || c.Session.RecordVideo) && c.Media.RecordDir == "" {
		bad("media.recordDir", "is empty but session.recordAudio/recordVideo asks for recordings")
	}
	c.validateDevices(bad)
	if (c.Web.CertFile == "") != (c.Web.KeyFile == "") {
		bad("web.certFile", "HTTPS needs both web.certFile and web.keyFile")
	}
	if c.Web.BrokerWS != "" && !hasAnyPrefix(c.Web.BrokerWS, "ws://", "wss://") {
		bad("web.brokerWS", "%q must start with ws:// or wss://", c.Web.BrokerWS)
	}
	if c.State.OutboxDir == "" {
		bad("state.outboxDir", "is empty: bills need a durable directory")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func trimField(err error) string {
	s := err.Error()
	if i := strings.Index(s, " "); i > 0 {
		return s[i+1:]
	}
	return s
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// nameKeys rewrites yaml.v3's "line N: …" errors to name the key at that
// line ("calls.callTimeout (line 3): cannot unmarshal …").
func nameKeys(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	keys := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if path != "" {
					k = path + "." + k
				}
				keys[n.Content[i].Line] = k
				keys[n.Content[i+1].Line] = k
				walk(n.Content[i+1], k)
			}
		}
	}
	walk(&root, "")
	var errs []error
	for _, msg := range te.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil && keys[line] != "" {
			_, rest, _ := strings.Cut(msg, ": ")
			msg = fmt.Sprintf("%s (line %d): %s", keys[line], line, rest)
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

func (s SessionConf) signaling() *signaling.SessionConfig {
	return &signaling.SessionConfig{
		VideoQuality: s.VideoQuality, VideoFrameRate: s.VideoFrameRate, VideoBitrate: s.VideoBitrate,
		RecordAudio: s.RecordAudio, RecordVideo: s.RecordVideo,
	}
}
