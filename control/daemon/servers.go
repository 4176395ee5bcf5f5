package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/metrics"
)

// httpServer is the API or the metrics endpoint: opened in start, so a bad
// address fails the start, and served until the daemon stops.
type httpServer struct {
	name    string
	l       net.Listener
	h       http.Handler
	done    chan struct{}
	err     error
	started bool
}

// listen opens the API socket and, if asked for, the metrics address.
func (d *Daemon) listen() error {
	if d.opts.APISocket != "" {
		l, err := api.Listen(d.opts.APISocket)
		if err != nil {
			return err
		}
		d.servers = append(d.servers, &httpServer{name: "api", l: l, h: api.NewHandler(d.core, d.log.Named("api"))})
	}
	if d.opts.MetricsAddr != "" {
		l, err := net.Listen("tcp", d.opts.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listen on %s: %w", d.opts.MetricsAddr, err)
		}
		d.servers = append(d.servers, &httpServer{name: "metrics", l: l, h: metrics.NewHandler(d.core, d.log.Named("metrics"))})
	}
	return nil
}

// start serves until ctx ends; an unexpected stop is reported on errc.
func (s *httpServer) start(ctx context.Context, errc chan<- error) {
	s.started, s.done = true, make(chan struct{})
	go func() {
		defer close(s.done)
		if s.err = api.Serve(ctx, s.l, s.h); s.err == nil && ctx.Err() == nil {
			s.err = fmt.Errorf("%s server stopped", s.name)
		}
		if ctx.Err() == nil {
			errc <- s.err
		}
	}()
}

// stop waits for a started server (its context is already cancelled) or
// closes the listener of one that never started.
func (s *httpServer) stop() error {
	if !s.started {
		return s.l.Close()
	}
	<-s.done
	if s.err != nil {
		return fmt.Errorf("%s: %w", s.name, s.err)
	}
	return nil
}
