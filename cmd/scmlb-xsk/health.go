package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
)

// healthFlags describe a backend health check on `service add` and
// `service health`.
var healthFlags = []cli.Flag{
	&cli.StringFlag{Name: "health", Value: "none", Usage: "backend health check: none, tcp, http or udp"},
	&cli.UintFlag{Name: "health-port", Usage: "probe this port instead of each backend's"},
	&cli.StringFlag{Name: "health-path", Value: "/", Usage: "http: request path"},
	&cli.IntFlag{Name: "health-status", Value: 200, Usage: "http: expected status"},
	&cli.StringFlag{Name: "health-payload", Value: "ping", Usage: "udp: request payload (any answer is success)"},
	&cli.DurationFlag{Name: "health-interval", Value: 2 * time.Second, Usage: "time between probes"},
	&cli.DurationFlag{Name: "health-timeout", Value: time.Second, Usage: "probe timeout (<= interval)"},
	&cli.IntFlag{Name: "health-rise", Value: 2, Usage: "successes to become healthy"},
	&cli.IntFlag{Name: "health-fall", Value: 3, Usage: "failures to become unhealthy"},
}

// healthFromFlags returns nil for --health none.
func healthFromFlags(c *cli.Context) (*api.HealthCheck, error) {
	t := c.String("health")
	if t == "none" {
		return nil, nil
	}
	if c.Uint("health-port") > 65535 {
		return nil, fmt.Errorf("--health-port %d: want 1-65535", c.Uint("health-port"))
	}
	return &api.HealthCheck{Type: t, Port: uint16(c.Uint("health-port")), Path: c.String("health-path"),
		Status: c.Int("health-status"), Payload: c.String("health-payload"),
		IntervalMs: uint32(c.Duration("health-interval") / time.Millisecond),
		TimeoutMs:  uint32(c.Duration("health-timeout") / time.Millisecond),
		Rise:       c.Int("health-rise"), Fall: c.Int("health-fall")}, nil
}

var serviceHealthCommand = &cli.Command{
	Name:  "health",
	Usage: "set (or with --health none remove) a service's backend health check",
	Flags: append([]cli.Flag{&cli.StringFlag{Name: "id", Required: true, Usage: "service id"}}, healthFlags...),
	Action: func(c *cli.Context) error {
		id, err := idArg(c, "id")
		if err != nil {
			return err
		}
		h, err := healthFromFlags(c)
		if err != nil {
			return err
		}
		if err := client(c).SetServiceHealth(id, h); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "service %d health check: %s\n", id, healthSummary(h))
		return nil
	},
}

func healthSummary(h *api.HealthCheck) string {
	if h == nil {
		return "none"
	}
	s := h.Type
	if h.Type == "http" {
		s += fmt.Sprintf(" %s=%d", h.Path, h.Status)
	}
	return s + fmt.Sprintf(" every %dms (rise %d, fall %d)", h.IntervalMs, h.Rise, h.Fall)
}
