// Package ociregistry runs a real OCI registry (distribution/distribution v3, the
// in-memory storage driver) inside the process, behind a loopback listener, for the
// registry tests and the demo. It serves plain HTTP on 127.0.0.1 only: a registry for
// tests, never for anything that leaves the machine.
package ociregistry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // the "inmemory" driver
)

// Registry is one running in-process registry.
type Registry struct {
	// Addr is host:port of the loopback listener (127.0.0.1:PORT).
	Addr string

	app    *handlers.App
	srv    *http.Server
	done   chan error
	cancel context.CancelFunc
}

// Handler builds the registry's HTTP handler: distribution's App with the in-memory
// driver (content lives as long as the handler), deletes enabled, no redirects.
func Handler(ctx context.Context) (*handlers.App, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			"delete":   configuration.Parameters{"enabled": true},
			"redirect": configuration.Parameters{"disable": true},
		},
	}
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Log.AccessLog.Disabled = true
	var app *handlers.App
	err := func() (err error) {
		// NewApp panics on a configuration it cannot use; ours is fixed, but say so
		// as an error rather than take the caller down.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("registry: %v", r)
			}
		}()
		app = handlers.NewApp(ctx, cfg)
		return nil
	}()
	return app, err
}

// Start serves a new in-memory registry on 127.0.0.1 (port chosen by the kernel when
// addr is ""). wrap, when not nil, wraps the registry's handler: tests use it to play
// a registry that lies.
func Start(ctx context.Context, addr string, wrap func(http.Handler) http.Handler) (*Registry, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("registry: %s is not a loopback address: this registry is for tests only", addr)
	}
	ctx, cancel := context.WithCancel(ctx)
	app, err := Handler(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	var h http.Handler = app
	if wrap != nil {
		h = wrap(app)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		return nil, err
	}
	r := &Registry{Addr: ln.Addr().String(), app: app, cancel: cancel, done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the listener and the registry; its content is gone.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if serr := <-r.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if aerr := r.app.Shutdown(); aerr != nil && err == nil {
		err = aerr
	}
	r.cancel()
	return err
}
