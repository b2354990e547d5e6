package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("intercomd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Identity.Account != "flat1" || cfg.Calls.CallTimeout != 30*time.Second || cfg.MQTT.Prefix != "intercom" {
		t.Fatalf("example config parsed as %+v", cfg)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"identity.account: ", "identity.device: "}},
		{"unknown key", "identity: {account: a, device: b}\ncalls: {callTimout: 3s}\n", []string{"field callTimout not found"}},
		{"bad values", `identity: {account: "a/b", device: d}
mqtt: {broker: "http://x", prefix: "a/#", keepAlive: 100ms}
calls: {ringTimeout: -1s}
log: {level: loud, format: xml}
`, []string{"identity.account:", "mqtt.broker:", "mqtt.prefix:", "mqtt.keepAlive:", "calls.ringTimeout:", "log.level:", "log.format:"}},
		{"missing files", "identity: {account: a, device: b}\nmqtt: {caFile: /nonexistent/ca.pem}\n", []string{"mqtt.caFile:"}},
		{"half a client cert", "identity: {account: a, device: b}\nmqtt: {certFile: intercomd.example.yaml}\n", []string{"mqtt.certFile:"}},
		{"wrong type", "identity: {account: a, device: b}\ncalls: {callTimeout: soon}\n", []string{"callTimeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig([]byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRunCheckConfigAndVersion(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"-version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "intercomd ") {
		t.Fatalf("-version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-config", "intercomd.example.yaml", "-check-config"}, &out, &errOut); code != 0 {
		t.Fatalf("-check-config on the example: %d %s", code, errOut.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("identity: {account: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"-config", bad, "-check-config"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "identity.device") {
		t.Fatalf("bad config: %d %q", code, errOut.String())
	}
}
