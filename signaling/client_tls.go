package signaling

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig wraps the broker TLS settings; conf is nil for plain tcp/ws.
type tlsConfig struct{ conf *tls.Config }

// loadTLS reads the CA and client certificate files. It runs at Start so a
// renewed certificate is picked up by a restart without a config change.
func loadTLS(cfg ClientConfig) (tlsConfig, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" {
		return tlsConfig{}, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return tlsConfig{}, fmt.Errorf("signaling config: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return tlsConfig{}, fmt.Errorf("signaling config: CAFile %s: no PEM certificate found", cfg.CAFile)
		}
		conf.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return tlsConfig{}, fmt.Errorf("signaling config: CertFile/KeyFile: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return tlsConfig{conf: conf}, nil
}
