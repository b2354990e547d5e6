// Command intercom-web serves the indoor-unit page and the SDK bundle on
// their own (web.Server), for development and the end-to-end tests; the
// daemon embeds the same server. With -stdin-eof it exits when its
// standard input closes, so a test harness that dies takes it along.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/intercomd/intercomd/web"
)

func main() {
	listen := flag.String("listen", web.DefaultListen, "listen address host:port (port 0: a free port)")
	brokerWS := flag.String("broker-ws", "", "broker WebSocket URL for the page (default: the page's host, port 1884)")
	prefix := flag.String("prefix", "intercom", "topic prefix")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS key (PEM)")
	stdinEOF := flag.Bool("stdin-eof", false, "exit when standard input closes")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	srv, err := web.NewServer(web.Config{Listen: *listen, BrokerWS: *brokerWS, Prefix: *prefix, CertFile: *cert, KeyFile: *key, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "intercom-web:", err)
		os.Exit(1)
	}
	// The harness reads the URL from this line.
	fmt.Printf("intercom-web listening on %s\n", srv.URL())
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "intercom-web:", err)
		os.Exit(1)
	}
}
