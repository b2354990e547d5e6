package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestServesPageAndBundle(t *testing.T) {
	s := start(t, Config{})
	base := "http://" + s.Addr()
	c := &http.Client{Timeout: 5 * time.Second}

	resp, body := get(t, c, base+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, `<script type="module" src="app.js">`) {
		t.Fatalf("GET /: %d, %.200q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / content type %q", ct)
	}
	for _, f := range []string{"/app.js", "/style.css"} {
		if resp, _ := get(t, c, base+f); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", f, resp.StatusCode)
		}
	}
	resp, body = get(t, c, base+"/netcall.js")
	if resp.StatusCode != 200 || len(body) < 10000 || !strings.Contains(body, "netcallBill") {
		t.Fatalf("GET /netcall.js: %d, %d bytes", resp.StatusCode, len(body))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("bundle content type %q (module scripts need a JavaScript MIME type)", ct)
	}
	if resp, _ := get(t, c, base+"/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET /nope.js: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, c, base+"/../server.go"); resp.StatusCode != 404 {
		t.Errorf("path escape: %d, want 404", resp.StatusCode)
	}
}

func TestConfigDerivesBrokerURL(t *testing.T) {
	s := start(t, Config{})
	_, port, _ := net.SplitHostPort(s.Addr())
	c := &http.Client{Timeout: 5 * time.Second}
	_, body := get(t, c, "http://localhost:"+port+"/config.json")
	var cfg pageConfig
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.BrokerWS != "ws://localhost:1884" || cfg.Prefix != "intercom" {
		t.Fatalf("config %+v", cfg)
	}

	s2 := start(t, Config{BrokerWS: "wss://intercom.example:8884/mqtt", Prefix: "site"})
	_, body = get(t, c, "http://"+s2.Addr()+"/config.json")
	if !strings.Contains(body, `"brokerWS":"wss://intercom.example:8884/mqtt"`) || !strings.Contains(body, `"prefix":"site"`) {
		t.Fatalf("config %s", body)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	s := start(t, Config{CertFile: certFile, KeyFile: keyFile})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	_, body := get(t, c, s.URL()+"config.json")
	if !strings.Contains(body, `"brokerWS":"wss://127.0.0.1:1884"`) {
		t.Fatalf("over TLS the derived broker URL must be wss: %s", body)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Listen: "nonsense"},
		{Listen: "127.0.0.1:0", CertFile: "only-cert.pem"},
		{Listen: "127.0.0.1:0", BrokerWS: "tcp://127.0.0.1:1883"},
		{Listen: "127.0.0.1:0", CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"},
	} {
		if s, err := NewServer(cfg); err == nil {
			s.ln.Close()
			t.Errorf("NewServer(%+v) succeeded", cfg)
		}
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intercom.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
