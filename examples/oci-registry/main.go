// Command oci-registry runs a throwaway OCI registry (distribution v3 with the
// in-memory driver) on 127.0.0.1 for the demo: plain HTTP, loopback only, content gone
// when it stops. It writes its host:port to --addr-file once it listens and serves
// until SIGINT or SIGTERM. Not a registry for anything but a demo or a test.
//
//	oci-registry --addr-file /tmp/registry.addr &
//	skillbox push ./upper "$(cat /tmp/registry.addr)/skills/upper:1.0.0" --plain-http-unsafe
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/skillbox-dev/skillbox/internal/ociregistry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	addrFile := flag.String("addr-file", "", "write host:port here once listening")
	flag.Parse()
	logrus.SetOutput(io.Discard) // distribution logs every request
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg, err := ociregistry.Start(ctx, *addr, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oci-registry:", err)
		os.Exit(1)
	}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(reg.Addr+"\n"), 0o644); err == nil {
			err = os.Rename(tmp, *addrFile)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "oci-registry:", err)
			reg.Close()
			os.Exit(1)
		}
	}
	fmt.Fprintln(os.Stderr, "oci-registry: serving on", reg.Addr)
	<-ctx.Done()
	if err := reg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "oci-registry:", err)
		os.Exit(1)
	}
}
