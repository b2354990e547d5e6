// Package web serves the indoor-unit page and the browser SDK bundle
// (web/page, web/bundle/netcall.js, embedded) on an optional HTTP(S)
// listener. The page talks to the broker's MQTT-over-WebSocket listener
// directly; /config.json tells it where that is.
package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed page bundle/netcall.js
var files embed.FS

// DefaultListen is the listen address when Config.Listen is empty:
// loopback only. Phones on the LAN need a LAN address and TLS (browsers
// give the microphone only to secure contexts off localhost).
const DefaultListen = "127.0.0.1:8080"

// DefaultBrokerWSPort is the port of the broker WebSocket URL derived from
// the request's host when Config.BrokerWS is empty (the embedded broker's
// default WebSocket listener).
const DefaultBrokerWSPort = "1884"

// Config configures a Server.
type Config struct {
	// Listen is host:port; empty means DefaultListen, port 0 a free port.
	Listen string
	// CertFile and KeyFile (PEM) switch the listener to HTTPS.
	CertFile, KeyFile string
	// BrokerWS is the MQTT-over-WebSocket URL the page connects to
	// (ws://host:port or wss://…). Empty: the request's host name with
	// port 1884, wss when the page was served over TLS.
	BrokerWS string
	// Prefix is the topic prefix the page uses (default "intercom").
	Prefix string
	Logger *slog.Logger
}

// Server serves the page and the SDK.
type Server struct {
	cfg Config
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// NewServer validates cfg, loads the TLS certificate and binds the
// listener, so Addr reports the real address before Serve.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "intercom"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("web: listen address %q: %w", cfg.Listen, err)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("web: CertFile and KeyFile must be set together")
	}
	if cfg.BrokerWS != "" && !strings.HasPrefix(cfg.BrokerWS, "ws://") && !strings.HasPrefix(cfg.BrokerWS, "wss://") {
		return nil, fmt.Errorf("web: BrokerWS %q is not a ws:// or wss:// URL", cfg.BrokerWS)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "web")}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: TLS certificate: %w", err)
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s.ln = ln
	return s, nil
}

// Addr is the bound listen address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the page's URL on the bound address.
func (s *Server) URL() string {
	scheme := "http"
	if s.srv.TLSConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + s.Addr() + "/"
}

// Serve serves until ctx ends, then shuts down (2 s grace).
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		ln := s.ln
		if s.srv.TLSConfig != nil {
			ln = tls.NewListener(ln, s.srv.TLSConfig)
		}
		s.log.Info("web page listening", "url", s.URL())
		errc <- s.srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutCtx); err != nil {
		_ = s.srv.Close()
	}
	<-errc
	return nil
}

// Handler serves the page, the bundle and /config.json.
func (s *Server) Handler() http.Handler {
	page, _ := fs.Sub(files, "page")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", s.serveConfig)
	mux.HandleFunc("GET /netcall.js", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, files, "bundle/netcall.js")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, page, "index.html")
	})
	mux.HandleFunc("GET /{file}", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, page, r.PathValue("file"))
	})
	return securityHeaders(mux)
}

// pageConfig is what /config.json tells the page.
type pageConfig struct {
	BrokerWS string `json:"brokerWS"`
	Prefix   string `json:"prefix"`
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	cfg := pageConfig{BrokerWS: s.cfg.BrokerWS, Prefix: s.cfg.Prefix}
	if cfg.BrokerWS == "" {
		cfg.BrokerWS = BrokerURLFor(r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(cfg)
}

// BrokerURLFor derives the broker WebSocket URL from the request: its host
// name, port DefaultBrokerWSPort, wss when the request came over TLS.
func BrokerURLFor(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		host = "127.0.0.1"
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + net.JoinHostPort(host, DefaultBrokerWSPort)
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

func serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	// Small files, embedded per build: always revalidate so an upgrade shows at once.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Permissions-Policy", "camera=(self), microphone=(self)")
		h.ServeHTTP(w, r)
	})
}
