package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/config"
)

// Controller is what the API drives; the daemon implements it. Errors
// wrapping config.ErrNotFound, ErrExists, ErrConflict or ErrInvalid become
// 404, 409, 409 and 400.
type Controller interface {
	Services() []Service
	AddService(AddServiceRequest) (Service, error)
	DeleteService(id uint32, force bool) error
	SetServiceHealth(id uint32, h *HealthCheck) error
	AddBackend(AddBackendRequest) (Backend, error)
	DrainBackend(id uint32) error
	DeleteBackend(id uint32) error
	Conntrack() []Flow
	Stats() (Stats, error)
	FirewallRules() ([]FirewallRule, error)
	AddFirewallRule(AddFirewallRuleRequest) (FirewallRule, error)
	DeleteFirewallRule(id uint32) error
	DosPolicies() ([]DosPolicy, error)
	AddDosPolicy(AddDosPolicyRequest) (DosPolicy, error)
	DeleteDosPolicy(id uint32) error
	StartDump(DumpRequest) (DumpSession, error)
	BGP() (BGP, error)
	SetBGP(*BGPSettings) error // nil: off
	Apply(ApplyRequest) (ApplyResult, error)
	Export() (Export, error)
	Trace(TraceRequest) (Trace, error)
}

// NewHandler routes the API to c.
func NewHandler(c Controller, log *zap.Logger) http.Handler {
	h := &handler{c: c, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) { reply(w, c.Services(), nil) })
	mux.HandleFunc("POST /v1/services", create(c.AddService))
	mux.HandleFunc("DELETE /v1/services/{id}", h.withID(func(id uint32, r *http.Request) error {
		return c.DeleteService(id, r.URL.Query().Get("force") == "true")
	}))
	mux.HandleFunc("PUT /v1/services/{id}/health", h.withID(func(id uint32, r *http.Request) error {
		var req SetHealthRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		return c.SetServiceHealth(id, req.Health)
	}))
	mux.HandleFunc("GET /v1/backends", func(w http.ResponseWriter, r *http.Request) { reply(w, backendsOf(c.Services()), nil) })
	mux.HandleFunc("POST /v1/backends", create(c.AddBackend))
	mux.HandleFunc("POST /v1/backends/{id}/drain", h.withID(func(id uint32, _ *http.Request) error { return c.DrainBackend(id) }))
	mux.HandleFunc("DELETE /v1/backends/{id}", h.withID(func(id uint32, _ *http.Request) error { return c.DeleteBackend(id) }))
	mux.HandleFunc("GET /v1/conntrack", func(w http.ResponseWriter, r *http.Request) { reply(w, c.Conntrack(), nil) })
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		s, err := c.Stats()
		reply(w, s, err)
	})
	mux.HandleFunc("GET /v1/dump", func(w http.ResponseWriter, r *http.Request) { serveDump(c, w, r) })
	mux.HandleFunc("GET /v1/firewall", func(w http.ResponseWriter, r *http.Request) {
		rules, err := c.FirewallRules()
		reply(w, rules, err)
	})
	mux.HandleFunc("POST /v1/firewall", create(c.AddFirewallRule))
	mux.HandleFunc("DELETE /v1/firewall/{id}", h.withID(func(id uint32, _ *http.Request) error { return c.DeleteFirewallRule(id) }))
	mux.HandleFunc("GET /v1/dos", func(w http.ResponseWriter, r *http.Request) {
		ps, err := c.DosPolicies()
		reply(w, ps, err)
	})
	mux.HandleFunc("POST /v1/dos", create(c.AddDosPolicy))
	mux.HandleFunc("DELETE /v1/dos/{id}", h.withID(func(id uint32, _ *http.Request) error { return c.DeleteDosPolicy(id) }))
	mux.HandleFunc("GET /v1/bgp", func(w http.ResponseWriter, r *http.Request) {
		b, err := c.BGP()
		reply(w, b, err)
	})
	mux.HandleFunc("PUT /v1/bgp", func(w http.ResponseWriter, r *http.Request) {
		var req BGPSettings
		err := decode(r, &req)
		if err == nil {
			err = c.SetBGP(&req)
		}
		noContent(w, err)
	})
	mux.HandleFunc("DELETE /v1/bgp", func(w http.ResponseWriter, r *http.Request) { noContent(w, c.SetBGP(nil)) })
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		var req ApplyRequest
		if err := decodeMax(r, &req, applyBodyMax); err != nil {
			reply(w, nil, err)
			return
		}
		res, err := c.Apply(req)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/trace", func(w http.ResponseWriter, r *http.Request) {
		var req TraceRequest
		if err := decode(r, &req); err != nil {
			reply(w, nil, err)
			return
		}
		tr, err := c.Trace(req)
		reply(w, tr, err)
	})
	mux.HandleFunc("GET /v1/export", func(w http.ResponseWriter, r *http.Request) {
		e, err := c.Export()
		reply(w, e, err)
	})
	return h.logged(mux)
}

func noContent(w http.ResponseWriter, err error) {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	reply(w, nil, err)
}

type handler struct {
	c   Controller
	log *zap.Logger
}

// create decodes a request, calls add and answers 201 with what it made.
func create[Req, Resp any](add func(Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decode(r, &req); err != nil {
			reply(w, nil, err)
			return
		}
		v, err := add(req)
		replyCreated(w, v, err)
	}
}

func (h *handler) withID(fn func(uint32, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			reply(w, nil, fmt.Errorf("%w: id %q is not a number", config.ErrInvalid, r.PathValue("id")))
			return
		}
		noContent(w, fn(uint32(id), r))
	}
}

// logged records every change (not reads) with its outcome.
func (h *handler) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		if r.Method != http.MethodGet {
			h.log.Info("api", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rec.code))
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// write deadlines of dump streams).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// applyBodyMax bounds an apply request: a document at its largest
// (declare.MaxSize) escaped into JSON.
const applyBodyMax = 40 << 20

// decode reads exactly one JSON value: unknown fields, and anything but
// white space after the value, are refused rather than ignored.
func decode(r *http.Request, v any) error { return decodeMax(r, v, 1<<20) }

func decodeMax(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", config.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: request body: data after the JSON value", config.ErrInvalid)
	}
	return nil
}

func replyCreated(w http.ResponseWriter, v any, err error) {
	if err == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(v)
		return
	}
	reply(w, nil, err)
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(statusOf(err))
		json.NewEncoder(w).Encode(Error{Error: err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, config.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, config.ErrExists), errors.Is(err, config.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, config.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func backendsOf(svcs []Service) []Backend {
	out := []Backend{}
	for _, s := range svcs {
		out = append(out, s.Backends...)
	}
	return out
}

// CheckSocketPath refuses a socket path at which something other than a
// socket exists: Listen replaces a stale socket file, never a regular file
// or a directory someone else put there.
func CheckSocketPath(path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("api socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("api socket %s: exists and is not a socket (%s); choose another --socket", path, fi.Mode().Type())
	}
	return nil
}

// Listen opens the Unix socket at path, readable and writable by root only.
// A leftover socket file from a dead daemon is replaced; a live one is an error.
func Listen(path string) (net.Listener, error) {
	if err := CheckSocketPath(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api socket %s: another daemon is listening", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	return l, nil
}

// Serve answers API requests on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
