// Command intercomctl drives and watches intercomd devices over MQTT:
// call, answer, reject, hangup, control, status and watch.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

var version = "dev"

const usage = `usage: intercomctl [flags] COMMAND [ARGS]

Commands (sent to the device named by -device ACCOUNT/DEVICE):
  call ACCOUNT [audio|video]   call every device of ACCOUNT
  answer | reject              respond to the call ringing on the device
  hangup                       end, cancel or decline the current call
  control COMMAND              send a netcall control command (1-16) in the current call
  status                       print the device's call state
  press BUTTON [long]          act as if the device's button was pressed
  unlock                       pulse the device's door relay
  watch                        print presence, state, events and bills live
                               (-device may use + wildcards, default +/+)

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("intercomctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", envOr("INTERCOM_BROKER", "tcp://127.0.0.1:1883"), "MQTT broker URL (env INTERCOM_BROKER)")
	prefix := fs.String("prefix", envOr("INTERCOM_PREFIX", signaling.DefaultPrefix), "topic prefix (env INTERCOM_PREFIX)")
	device := fs.String("device", os.Getenv("INTERCOM_DEVICE"), "target device ACCOUNT/DEVICE (env INTERCOM_DEVICE)")
	username := fs.String("username", os.Getenv("INTERCOM_USERNAME"), "MQTT username")
	password := fs.String("password", os.Getenv("INTERCOM_PASSWORD"), "MQTT password (env INTERCOM_PASSWORD)")
	caFile := fs.String("ca", "", "broker CA certificate (PEM)")
	certFile := fs.String("cert", "", "client certificate (PEM)")
	keyFile := fs.String("key", "", "client key (PEM)")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for a response")
	jsonOut := fs.Bool("json", false, "print raw JSON")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "intercomctl %s\n", version)
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := signaling.ControllerConfig{
		Broker: *broker, Username: *username, Password: *password,
		CAFile: *caFile, CertFile: *certFile, KeyFile: *keyFile,
		Topics: signaling.Topics{Prefix: *prefix},
	}
	cmd, cmdArgs := rest[0], rest[1:]
	if cmd == "watch" {
		target := *device
		if target == "" {
			target = "+/+"
		}
		addr, err := parseDevice(target)
		if err != nil {
			fmt.Fprintf(stderr, "intercomctl: -device: %v\n", err)
			return 2
		}
		if err := watch(ctx, cfg, addr, stdout, *jsonOut); err != nil {
			fmt.Fprintf(stderr, "intercomctl: %v\n", err)
			return 1
		}
		return 0
	}
	req, err := buildRequest(cmd, cmdArgs)
	if err != nil {
		fmt.Fprintf(stderr, "intercomctl: %v\n", err)
		return 2
	}
	addr, err := parseDevice(*device)
	if err != nil {
		fmt.Fprintf(stderr, "intercomctl: -device: %v\n", err)
		return 2
	}
	reqCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ctl, err := signaling.DialController(reqCtx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "intercomctl: %v\n", err)
		return 1
	}
	defer ctl.Close()
	resp, err := ctl.Request(reqCtx, addr, req)
	if err != nil {
		fmt.Fprintf(stderr, "intercomctl: %v\n", err)
		return 1
	}
	if *jsonOut {
		b, _ := json.Marshal(resp)
		fmt.Fprintln(stdout, string(b))
	} else if resp.Status == "ok" {
		if len(resp.Data) > 0 {
			fmt.Fprintf(stdout, "ok %s\n", resp.Data)
		} else {
			fmt.Fprintln(stdout, "ok")
		}
	}
	if resp.Status != "ok" {
		fmt.Fprintf(stderr, "intercomctl: %s failed: %s (code %d)\n", cmd, resp.Error, resp.Code)
		return 1
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func parseDevice(s string) (signaling.Address, error) {
	if s == "" {
		return signaling.Address{}, errors.New("required: ACCOUNT/DEVICE of the intercomd to command")
	}
	account, dev, ok := strings.Cut(s, "/")
	if !ok || account == "" || dev == "" || strings.Contains(dev, "/") {
		return signaling.Address{}, fmt.Errorf("%q is not ACCOUNT/DEVICE", s)
	}
	return signaling.Address{Account: account, Device: dev}, nil
}

func buildRequest(cmd string, args []string) (signaling.Request, error) {
	req := signaling.Request{Action: cmd}
	switch cmd {
	case "call":
		if len(args) < 1 || len(args) > 2 {
			return req, errors.New("usage: call ACCOUNT [audio|video]")
		}
		req.Account = args[0]
		req.Type = 2
		if len(args) == 2 {
			switch args[1] {
			case "audio":
				req.Type = 1
			case "video":
				req.Type = 2
			default:
				return req, fmt.Errorf("call type %q is not audio or video", args[1])
			}
		}
	case "press":
		if len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "long") {
			return req, errors.New("usage: press BUTTON [long]")
		}
		req.Button, req.Long = args[0], len(args) == 2
	case "answer", "reject", "hangup", "status", "unlock":
		if len(args) != 0 {
			return req, fmt.Errorf("%s takes no arguments", cmd)
		}
	case "control":
		if len(args) != 1 {
			return req, errors.New("usage: control COMMAND (1-16)")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 255 {
			return req, fmt.Errorf("control command %q is not a number 1-255", args[0])
		}
		req.Command = n
	default:
		return req, fmt.Errorf("unknown command %q (see -h)", cmd)
	}
	return req, nil
}

func watch(ctx context.Context, cfg signaling.ControllerConfig, device signaling.Address, out io.Writer, raw bool) error {
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ctl, err := signaling.DialController(dialCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer ctl.Close()
	return ctl.Watch(ctx, device, nil, func(o signaling.Observation) {
		if raw {
			fmt.Fprintf(out, "%s %s\n", o.Topic, o.Payload)
			return
		}
		fmt.Fprintf(out, "%s %-20s %-8s %s\n", time.Now().Format("15:04:05.000"), o.Device, o.Kind, o.Payload)
	})
}
