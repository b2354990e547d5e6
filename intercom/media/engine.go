// Package media is the WebRTC media path of a call: one Engine per process
// (codecs, interceptors, the DTLS certificate) and one Session per call,
// carrying G.711 audio both ways and the door camera's H.264 to the indoor
// unit over a pion PeerConnection. It knows nothing about MQTT: SDP and ICE
// candidates go in and out through method calls and callbacks, and the call
// engine in package intercom moves them over the signalling.
package media

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// AbsCaptureTimeURI is the RTP header extension that carries the capture
// timestamp of each video frame, so the receiver can measure capture →
// receive latency (pion registers no constant for it).
const AbsCaptureTimeURI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"

// H264FMTP is the one H.264 format we offer: packetization-mode 1 (FU-A, so
// frames larger than the MTU work) and Constrained Baseline level 3.1, what
// every browser decodes and what Pi hardware encoders and the test pattern
// produce.
const H264FMTP = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// Payload types; fixed so SDP and recordings are easy to read.
const (
	ptPCMU = 0
	ptPCMA = 8
	ptG722 = 9
	ptH264 = 102
)

// ICEServer is one STUN or TURN server from the configuration.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Config configures the process-wide Engine.
type Config struct {
	ICEServers []ICEServer
	// ICEDisconnectedTimeout is how long without traffic from the peer before
	// ICE reports disconnected; ICEFailedTimeout how long disconnected before
	// it gives up. A disconnection that lasts past both ends the call.
	ICEDisconnectedTimeout time.Duration // default 5 s
	ICEFailedTimeout       time.Duration // default 10 s
	UDPPortMin, UDPPortMax uint16        // optional ephemeral port range
	// LoopbackOnly gathers only 127.0.0.1 host candidates and disables mDNS:
	// tests and the demo get fast, deterministic ICE.
	LoopbackOnly bool
	// InitialGatherWait bounds how long CreateOffer/AcceptOffer wait for
	// candidate gathering so the first SDP already carries the host
	// candidates (the peer can start checks without waiting for trickle).
	// Default 50 ms; later candidates trickle.
	InitialGatherWait time.Duration
	// G722 offers wideband G.722 first (PCMU/PCMA stay as fallbacks): the
	// microphone and speaker then run at 16 kHz, resampled for a G.711 peer.
	G722 bool
	// Net is the network pion uses (nil: the host's). Tests inject one
	// that can cut a path, as a roaming Wi-Fi client's old address is.
	Net    transport.Net
	Logger *slog.Logger
}

// Engine holds what every call shares: the pion API (codecs, interceptors,
// settings) and the DTLS certificate. Create one per process.
type Engine struct {
	cfg       Config
	api       *webrtc.API
	cert      webrtc.Certificate
	log       *slog.Logger
	audioRate int      // microphone/speaker sample rate: 16000 with G.722, else 8000
	audioPref []string // audio MIME types in order of preference
}

// NewEngine builds the pion API and generates the DTLS certificate once:
// certificate generation costs seconds of CPU on a Pi Zero, and paying it per
// call would sit directly on the accept → first frame path.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.ICEDisconnectedTimeout <= 0 {
		cfg.ICEDisconnectedTimeout = 5 * time.Second
	}
	if cfg.ICEFailedTimeout <= 0 {
		cfg.ICEFailedTimeout = 10 * time.Second
	}
	if cfg.InitialGatherWait <= 0 {
		cfg.InitialGatherWait = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "media")

	me := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{
		{Type: "goog-remb"},
		{Type: "ccm", Parameter: "fir"},
		{Type: "nack"},
		{Type: "nack", Parameter: "pli"},
	}
	codecs := []struct {
		p webrtc.RTPCodecParameters
		k webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: H264FMTP, RTCPFeedback: videoFB},
			PayloadType:        ptH264,
		}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1},
			PayloadType:        ptPCMU,
		}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1},
			PayloadType:        ptPCMA,
		}, webrtc.RTPCodecTypeAudio},
	}
	audioRate, audioPref := 8000, []string{webrtc.MimeTypePCMU, webrtc.MimeTypePCMA}
	if cfg.G722 {
		// Registered first so offers list it first: preference order.
		codecs = append([]struct {
			p webrtc.RTPCodecParameters
			k webrtc.RTPCodecType
		}{{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeG722, ClockRate: 8000, Channels: 1},
			PayloadType:        ptG722,
		}, webrtc.RTPCodecTypeAudio}}, codecs...)
		audioRate, audioPref = 16000, append([]string{webrtc.MimeTypeG722}, audioPref...)
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c.p, c.k); err != nil {
			return nil, fmt.Errorf("media: register codec %s: %w", c.p.MimeType, err)
		}
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AbsCaptureTimeURI}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("media: register abs-capture-time: %w", err)
	}

	// NACK generator+responder and sender/receiver reports (the session
	// computes loss, jitter and RTT itself from RTP and the reports). Not
	// pion's stats interceptor: GetStats races with receiver start-up and
	// costs CPU a Pi Zero lacks. Not TWCC/GCC: the
	// encoder runs at a configured bitrate on a LAN and bandwidth estimation
	// would only add CPU on a Pi Zero.
	ir := &interceptor.Registry{}
	// NACK every 20 ms instead of pion's 100 ms: on a LAN the round trip is
	// a millisecond, and a lost packet should cost a short stall, not a
	// tenth of a second (or, past the assembler's patience, a keyframe).
	if err := webrtc.ConfigureNackWithOptions(me, ir, []nack.GeneratorOption{nack.GeneratorInterval(20 * time.Millisecond)}); err != nil {
		return nil, fmt.Errorf("media: nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("media: rtcp reports: %w", err)
	}

	se := webrtc.SettingEngine{}
	keepAlive := min(2*time.Second, cfg.ICEDisconnectedTimeout/3)
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, keepAlive)
	// A peer that closes its PeerConnection also sends a DTLS close_notify;
	// by default pion would then close ours at once. The peer's hangup over
	// MQTT is what ends a call normally, and it can arrive after the
	// close_notify: closing on DTLS would race it and bill a normal hangup as
	// a failure. Leave ending the call to ICE timeouts and signalling.
	se.DisableCloseByDTLS(true)
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("media: udp port range %d-%d: %w", cfg.UDPPortMin, cfg.UDPPortMax, err)
		}
	}
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	}
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("media: dtls key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("media: dtls certificate: %w", err)
	}

	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	log.Info("media engine ready", "ice_servers", len(cfg.ICEServers), "loopback_only", cfg.LoopbackOnly, "g722", cfg.G722,
		"ice_disconnected_timeout", cfg.ICEDisconnectedTimeout, "ice_failed_timeout", cfg.ICEFailedTimeout)
	return &Engine{cfg: cfg, api: api, cert: *cert, log: log, audioRate: audioRate, audioPref: audioPref}, nil
}

func (e *Engine) rtcConfig() webrtc.Configuration {
	servers := make([]webrtc.ICEServer, 0, len(e.cfg.ICEServers))
	for _, s := range e.cfg.ICEServers {
		is := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
			is.CredentialType = webrtc.ICECredentialTypePassword
		}
		servers = append(servers, is)
	}
	return webrtc.Configuration{
		ICEServers:    servers,
		Certificates:  []webrtc.Certificate{e.cert},
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	}
}
