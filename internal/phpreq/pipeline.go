package phpreq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is a PHP request prepared by the pipeline for a Runner: the
// script, its CGI environment, and its body received in full.
type Request struct {
	// HTTP is the client's request (method, URI, protocol); its body has
	// been read already: use Body.
	HTTP *http.Request
	// ID is the request id (X-Request-Id) for logs.
	ID     string
	Target *Target
	Env    *Env
	Body   *Body
	// Settings are the route's PHP settings (never nil).
	Settings *Settings
}

// Settings are the PHP settings of the requests of one route (a routing
// rule, or the default backend).
type Settings struct {
	// TerminateTimeout bounds the request's wall-clock time in PHP (0:
	// none); the client gets a 504 past it.
	TerminateTimeout time.Duration
	// SlowlogTimeout: a request running longer gets its PHP backtrace
	// logged (0: never; the embedded backend only).
	SlowlogTimeout time.Duration
	// INI and AdminINI are PHP directives for the request, as INI text
	// ("name=value" lines): PHP_VALUE and PHP_ADMIN_VALUE.
	INI, AdminINI string
}

var noSettings = &Settings{}

// Context is the request's context: done when the client has gone.
func (r *Request) Context() context.Context { return r.HTTP.Context() }

// A Runner executes prepared requests on one kind of PHP: in this
// process (embedded), or on PHP-FPM (fastcgi). It takes its capacity (a
// PHP thread, an FPM connection) only for the execution, writes PHP's
// response to out (Head, then Write, Flush, Finish), and returns once
// PHP is done with the request. A failure is returned as an *Error,
// whose Status the client gets if no response has started.
type Runner interface {
	Run(req *Request, out *Output) error
}

// Handler is the one request pipeline both PHP backends share: resolve
// the path, serve what is not a script, receive the body, build the
// environment, run the script on the Runner, and deliver its response
// through the buffers. It is an http.Handler for requests whose path the
// server has cleaned.
type Handler struct {
	Resolver *Resolver
	// Static sends the non-PHP files that live under the document root.
	Static http.Handler
	Runner Runner
	Bodies *BodyBuffers
	Output *OutputLimits
	Log    *slog.Logger
	// Backend names the backend in log lines ("embedded", "fastcgi").
	Backend string
	// Settings are the PHP settings of the requests it serves (nil: none).
	Settings *Settings
}

// WithSettings returns a Handler like h whose requests carry s: one per
// route, sharing h's resolver, buffers and runner.
func (h *Handler) WithSettings(s *Settings) *Handler {
	h2 := *h
	h2.Settings = s
	return &h2
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.Resolver.Resolve(r)
	if t.Kind != Script {
		ServeNonScript(w, r, &t, h.Static)
		return
	}
	id := r.Header.Get("X-Request-Id")
	body, err := h.Bodies.Receive(r)
	if err != nil {
		status := BodyStatus(err)
		h.failed(w, r, id, &t, &Error{Status: status, Fault: FaultClient, Err: err, RetryAfter: retryAfterFull(status)})
		return
	}
	defer body.Close()
	env, err := h.Resolver.Env(r, &t, body.Length)
	if err != nil {
		h.failed(w, r, id, &t, &Error{Status: http.StatusBadRequest, Fault: FaultClient, Err: err})
		return
	}
	defer env.Release()

	out := newOutput(w, r, h.Output, h.dropped)
	defer putOutput(out)
	settings := h.Settings
	if settings == nil {
		settings = noSettings
	}
	out.req = Request{HTTP: r, ID: id, Target: &t, Env: env, Body: body, Settings: settings}
	runErr := h.run(&out.req, out)
	sent, err, abort := out.end(runErr)
	if err == nil {
		return
	}
	if sent {
		h.logFailure(r, id, &t, err)
		if abort {
			panic(http.ErrAbortHandler) // the server logs the request, then breaks the connection
		}
		return
	}
	h.failed(w, r, id, &t, err)
}

// dropped logs a header line of PHP's that was dropped.
func (h *Handler) dropped(o *Output, line string) {
	h.Log.Warn("php: header dropped", slog.String("backend", h.Backend), slog.String("request_id", o.req.ID),
		slog.String("script", o.req.Target.ScriptFilename), slog.String("header", line))
}

// run calls the Runner; a panic in it becomes a 500 (the server would
// make one too, but the Output must still be ended).
func (h *Handler) run(req *Request, out *Output) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			err = &Error{Status: http.StatusInternalServerError, Fault: FaultPHP,
				Err: fmt.Errorf("panic in the %s runner: %v", h.Backend, v)}
		}
	}()
	return h.Runner.Run(req, out)
}

// failed logs err and answers with its status.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, id string, t *Target, err error) {
	h.logFailure(r, id, t, err)
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Status: http.StatusBadGateway, Fault: FaultUpstream, Err: err}
	}
	if errors.Is(err, errClientGone) || pe.Fault == FaultClient && r.Context().Err() != nil {
		return // nobody to answer
	}
	if pe.RetryAfter != "" {
		w.Header().Set("Retry-After", pe.RetryAfter)
	}
	if pe.Status == http.StatusRequestEntityTooLarge || pe.Status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close") // the rest of the body is not worth reading
	}
	http.Error(w, strconv.Itoa(pe.Status)+" "+strings.ToLower(http.StatusText(pe.Status)), pe.Status)
}

func (h *Handler) logFailure(r *http.Request, id string, t *Target, err error) {
	fault, level := FaultUpstream, FaultUpstream.level()
	var pe *Error
	if errors.As(err, &pe) {
		fault, level = pe.Fault, pe.Fault.level()
		if pe.Quiet {
			level = slog.LevelDebug
		}
	}
	if errors.Is(err, errClientGone) {
		fault, level = FaultClient, FaultClient.level()
	}
	h.Log.LogAttrs(r.Context(), level, h.Backend+" request failed",
		slog.String("request_id", id), slog.String("script", t.ScriptFilename),
		slog.String("fault", fault.String()), slog.Any("error", err))
}

// retryAfterFull is the Retry-After for a full body budget.
func retryAfterFull(status int) string {
	if status == http.StatusServiceUnavailable {
		return "1"
	}
	return ""
}

// ServeNonScript answers a target that is not a script, the same way for
// both PHP backends: a file through static (with its protections), a 301
// to add a directory's slash, or a 404 (Forbidden included: a 403 would
// tell a scanner that "/.env" exists).
func ServeNonScript(w http.ResponseWriter, r *http.Request, t *Target, static http.Handler) {
	switch t.Kind {
	case Static:
		if t.ScriptName != r.URL.Path { // a directory's index file
			r2, u := *r, *r.URL
			u.Path, u.RawPath = t.ScriptName, ""
			r2.URL = &u
			r = &r2
		}
		static.ServeHTTP(w, r)
	case Redirect:
		http.Redirect(w, r, t.Location, http.StatusMovedPermanently)
	default:
		http.Error(w, "404 not found", http.StatusNotFound)
	}
}
