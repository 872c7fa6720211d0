// Package server is fe-php's HTTP front: it routes each request to a
// backend (an http.Handler), and around every request it sets a request
// id, enforces body limits and write timeouts, turns a panic into a 500,
// and writes the access log line. It also owns graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fe-php/fe-php/internal/accesslog"
	"github.com/fe-php/fe-php/internal/certs"
	"github.com/fe-php/fe-php/internal/compress"
	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/docroot"
	"github.com/fe-php/fe-php/internal/embed"
	"github.com/fe-php/fe-php/internal/fastcgi"
	"github.com/fe-php/fe-php/internal/fpm"
	"github.com/fe-php/fe-php/internal/headerops"
	"github.com/fe-php/fe-php/internal/http1"
	"github.com/fe-php/fe-php/internal/metrics"
	"github.com/fe-php/fe-php/internal/phpini"
	"github.com/fe-php/fe-php/internal/phpreq"
	"github.com/fe-php/fe-php/internal/router"
	"github.com/fe-php/fe-php/internal/static"
	"github.com/fe-php/fe-php/internal/version"
)

// route is where a request goes: a rule's backend, or the default one.
type route struct {
	handler http.Handler
	backend string
	rule    int            // rule index in the config file, -1 for the default
	headers *headerops.Ops // [server] headers and the rule's
	metrics *metrics.Route // nil without the admin listener
}

// Server routes requests to backends. Create it with New; it is an
// http.Handler, and Serve runs it on a listener.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	access   *accesslog.Logger // nil when the access log is off
	router   *router.Router
	routes   []route // aligned with router.Rules()
	fallback route   // the default backend
	early    route   // answers given before routing: the default's, counted apart
	closers  []func() error
	ids      idGenerator
	bodies   *phpreq.BodyBuffers // request bodies held for PHP, both backends

	writeTimeout time.Duration
	readTimeout  time.Duration
	maxBody      int64
	minRate      int64         // client_body_min_rate, bytes a second
	rateGrace    time.Duration // before the rate counts

	edge
	headers *headerops.Ops // [server] headers, for answers given before routing
	certs   atomic.Pointer[certs.Manager]

	// OnServing, if set, is called once every listener serves (systemd's
	// READY=1, or a worker's report to its supervisor).
	OnServing func()
	// Worker marks a supervisor's worker process: it logs that it serves
	// at debug level only, as the supervisor logs "serving" for them all.
	Worker bool

	// The admin listener's (see admin.go): metrics is nil without it.
	metrics  *metrics.Metrics
	embedded *embed.Backend                  // nil unless used
	fpmPools []*fpmPool                      // the FPM pools some route uses
	statics  []*static.Handler               // every static handler, for the cache metrics
	roots    map[string]*docroot.Root        // open directories by path, shared by their handlers
	outputs  map[string]*phpreq.OutputLimits // by PHP backend, for the spool metrics
	draining atomic.Bool                     // SIGTERM received: /readyz fails
}

// New builds the backends a validated configuration uses. It fails, with
// every reason, when a backend cannot be built (e.g. its root is gone, or
// it is not part of this version).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	rt, err := router.FromConfig(&cfg.Backend)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		log:          log,
		router:       rt,
		ids:          newIDGenerator(),
		writeTimeout: cfg.Server.WriteTimeout.Duration,
		readTimeout:  cfg.Server.ReadTimeout.Duration,
		maxBody:      int64(cfg.Server.MaxBodySize),
		minRate:      int64(cfg.Server.ClientBodyMinRate),
		rateGrace:    cfg.Server.ReadHeaderTimeout.Duration,
		bodies: &phpreq.BodyBuffers{
			MemLimit:   int64(cfg.Server.ClientBodyBufferSize),
			TotalLimit: int64(cfg.Server.ClientBodyBuffersTotal),
			TempDir:    cfg.Server.TempDir,
		},
		outputs: map[string]*phpreq.OutputLimits{},
		roots:   map[string]*docroot.Root{},
	}
	if cfg.Admin.Listen != "" {
		s.metrics = metrics.New()
	}
	handlers, err := s.buildBackends()
	if err != nil {
		s.Close()
		return nil, err
	}
	if s.headers, err = headerops.Parse(cfg.Server.Headers); err != nil {
		s.Close()
		return nil, fmt.Errorf("server.headers: %w", err)
	}
	for _, r := range rt.Rules() {
		ops, err := headerops.Parse(cfg.Server.Headers, cfg.Backend.RoutingRules[r.Index].Headers)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("backend.routing_rules[%d].headers: %w", r.Index, err)
		}
		h := s.withPool(handlers[r.Backend], cfg.Backend.RoutingRules[r.Index].FPM)
		s.routes = append(s.routes, route{handler: s.withSettings(h, r.Index), backend: r.Backend, rule: r.Index, headers: ops})
	}
	def := cfg.Backend.DefaultBackend
	s.fallback = route{handler: s.withSettings(s.withPool(handlers[def], ""), -1), backend: def, rule: -1, headers: s.headers}
	if sh, ok := s.fallback.handler.(*static.Handler); ok {
		// A static default backend is the SPA case: paths naming no file
		// fall back to the root's index file.
		s.fallback.handler = sh.WithFallback()
	}
	if err := s.compress(); err != nil {
		s.Close()
		return nil, err
	}
	s.early = s.fallback
	s.instrument()
	if err := s.edge.init(&cfg.Server); err != nil {
		s.Close()
		return nil, err
	}
	if out := cfg.Server.AccessLog.Output; out != "off" {
		if s.access, err = accesslog.Open(out, cfg.Server.AccessLog.Format); err != nil {
			s.Close()
			return nil, fmt.Errorf("server.access_log.output: %w", err)
		}
		s.closers = append(s.closers, s.access.Close)
	}
	return s, nil
}

// buildBackends builds each backend some route uses.
func (s *Server) buildBackends() (map[string]http.Handler, error) {
	handlers := map[string]http.Handler{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.cfg.UsedBackends())) {
		h, err := s.buildBackend(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %q: %w", name, err))
			continue
		}
		handlers[name] = h
	}
	return handlers, errors.Join(errs...)
}

func (s *Server) buildBackend(name string) (http.Handler, error) {
	switch name {
	case config.BackendDeny:
		return denyHandler{}, nil
	case config.BackendStatic:
		return s.newStatic(s.cfg.Backend.StaticFiles.Root)
	case config.BackendFastCGI:
		return s.newFastCGI()
	case config.BackendEmbedded:
		return s.newEmbedded()
	}
	return nil, fmt.Errorf("unknown backend")
}

// newStatic returns a static backend on root with the static_files
// settings (the PHP backends use one on the document root for the
// non-PHP files that live beside the scripts).
func (s *Server) newStatic(root string) (*static.Handler, error) {
	dir, err := s.docRoot(root)
	if err != nil {
		return nil, err
	}
	sf := &s.cfg.Backend.StaticFiles
	h, err := static.New(static.Options{
		Root:                     root,
		Dir:                      dir,
		IndexFiles:               sf.IndexFiles,
		CacheControl:             sf.CacheControl,
		Precompressed:            sf.Precompressed,
		AllowSymlinksOutsideRoot: sf.AllowSymlinksOutsideRoot,
		Logger:                   s.log,
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, h.Close)
	s.statics = append(s.statics, h)
	return h, nil
}

// docRoot opens path as a document root, or returns the one open for it
// already: the handlers serving from one path share it, so that all of
// them switch releases at the same instant.
func (s *Server) docRoot(path string) (*docroot.Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if r := s.roots[abs]; r != nil {
		return r, nil
	}
	r, err := docroot.Open(abs, s.log)
	if err != nil {
		return nil, err
	}
	s.roots[abs] = r
	s.closers = append(s.closers, r.Close)
	return r, nil
}

// phpHandler builds the PHP pipeline around runner, with its own
// resolver and a static handler on the document root for the non-PHP
// files beside the scripts.
func (s *Server) phpHandler(backend string, runner phpreq.Runner) (http.Handler, error) {
	root, err := s.docRoot(s.cfg.PHP.DocumentRoot)
	if err != nil {
		return nil, err
	}
	resolver, err := phpreq.NewResolver(phpreq.Options{
		Root:            root,
		DocumentRoot:    s.cfg.PHP.DocumentRoot,
		FrontController: s.cfg.PHP.FrontController,
		IndexFiles:      s.cfg.PHP.IndexFiles,
		ServerSoftware:  version.ServerSoftware(),
		ServerName:      s.cfg.Server.ServerName,
	})
	if err != nil {
		return nil, err
	}
	files, err := s.newStatic(s.cfg.PHP.DocumentRoot)
	if err != nil {
		return nil, err
	}
	output := &phpreq.OutputLimits{
		MemLimit:  int64(s.cfg.PHP.ResponseBufferSize),
		FileLimit: int64(s.cfg.PHP.MaxTempFileSize),
		TempDir:   s.cfg.Server.TempDir,
	}
	s.outputs[backend] = output
	return &phpreq.Handler{
		Resolver: resolver,
		Static:   files,
		Runner:   runner,
		Bodies:   s.bodies,
		Output:   output,
		Log:      s.log,
		Backend:  backend,
	}, nil
}

func (s *Server) newEmbedded() (http.Handler, error) {
	p := &s.cfg.PHP
	var slotWait interface{ Observe(float64) }
	if s.metrics != nil {
		slotWait = s.metrics.SlotWait
	}
	b, err := embed.New(embed.Options{
		LibPHPPath:      p.LibPHPPath,
		Workers:         p.WorkerPoolSize,
		MaxRequests:     p.WorkerMaxRequests,
		WaitTimeout:     p.WaitTimeout.Duration,
		INIFile:         p.INIFile,
		INI:             p.INI,
		Opcache:         p.Opcache,
		ShutdownTimeout: s.cfg.Server.ShutdownTimeout.Duration,
		Logger:          s.log,
		SlotWait:        slotWait,
	})
	if err != nil {
		return nil, err
	}
	s.embedded = b
	s.closers = append(s.closers, b.Close)
	return s.phpHandler(config.BackendEmbedded, b)
}

// newFastCGI is the fastcgi backend's PHP pipeline, without its runner:
// each route gets the FPM pool it uses (see withPool).
func (s *Server) newFastCGI() (http.Handler, error) {
	return s.phpHandler(config.BackendFastCGI, nil)
}

// fpmPool is one pool of FPM upstreams: the default one (name "",
// php.fpm_socket) or a [php.fpm.NAME].
type fpmPool struct {
	name    string
	backend *fpm.Backend
}

// withPool gives a fastcgi route's handler the runner of the FPM pool
// named pool ("": the default), built on first use.
func (s *Server) withPool(h http.Handler, pool string) http.Handler {
	ph, ok := h.(*phpreq.Handler)
	if !ok || ph.Backend != config.BackendFastCGI {
		return h
	}
	h2 := *ph
	h2.Runner = s.fpmBackend(pool)
	return &h2
}

func (s *Server) fpmBackend(name string) *fpm.Backend {
	for _, p := range s.fpmPools {
		if p.name == name {
			return p.backend
		}
	}
	cp := &s.cfg.Backend.ConnectionPool
	addrs, balance := s.cfg.PHP.FPMSocket, cp.Balance
	if name != "" {
		np := s.cfg.PHP.FPM[name]
		addrs = np.FPMSocket
		if np.Balance != "" {
			balance = np.Balance
		}
	}
	secs := func(n int) time.Duration { return time.Duration(n) * time.Second }
	b := fpm.New(fpm.Options{
		Pool: fastcgi.PoolConfig{
			MaxSize:        cp.MaxSize,
			MaxIdleTime:    secs(cp.MaxIdleTimeSecs),
			MaxLifetime:    secs(cp.MaxLifetimeSecs),
			ConnectTimeout: secs(cp.ConnectTimeoutSecs),
			WaitTimeout:    secs(cp.WaitTimeoutSecs),
			KeepAlive:      secs(cp.KeepaliveSecs),
		},
		Upstreams:           addrs,
		Balance:             balance,
		HealthCheckPath:     cp.HealthCheckPath,
		HealthCheckInterval: cp.HealthCheckInterval.Duration,
		Name:                name,
		ReadTimeout:         secs(cp.ReadTimeoutSecs),
		Breaker:             cp.CircuitBreaker,
		Logger:              s.log,
	})
	s.fpmPools = append(s.fpmPools, &fpmPool{name: name, backend: b})
	s.closers = append(s.closers, b.Close)
	return b
}

// compress wraps every route that answers with content in the response
// compression of [server.compression].
func (s *Server) compress() error {
	cc := s.cfg.Server.Compression
	if !cc.Enable {
		return nil
	}
	c, err := compress.New(compress.Options{Algorithms: cc.Algorithms, MinLength: int64(cc.MinLength), Types: cc.Types})
	if err != nil {
		return fmt.Errorf("server.compression: %w", err)
	}
	for _, rt := range append(slices.Collect(pointers(s.routes)), &s.fallback) {
		if rt.backend == config.BackendDeny {
			continue
		}
		var prepare func(http.Header, int)
		if rt.headers != nil {
			prepare = rt.headers.Apply
		}
		rt.handler = c.WrapWith(rt.handler, prepare)
	}
	return nil
}

// pointers yields a pointer to each element of xs.
func pointers[T any](xs []T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for i := range xs {
			if !yield(&xs[i]) {
				return
			}
		}
	}
}

// withSettings gives a PHP backend's handler the PHP settings of the
// route of rule (-1: the default backend).
func (s *Server) withSettings(h http.Handler, rule int) http.Handler {
	ph, ok := h.(*phpreq.Handler)
	if !ok {
		return h
	}
	cs := s.cfg.PHPSettings(rule)
	return ph.WithSettings(&phpreq.Settings{
		TerminateTimeout: cs.TerminateTimeout,
		SlowlogTimeout:   cs.SlowlogTimeout,
		INI:              phpini.Text(cs.INI),
		AdminINI:         phpini.Text(cs.AdminINI),
	})
}

// denyHandler is the deny backend: 403, nothing looked up.
type denyHandler struct{}

func (denyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "403 forbidden", http.StatusForbidden)
}

// Close releases the backends and flushes the access log.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Reload reopens a file access log (log rotation) and re-reads the TLS
// certificate files: what SIGHUP does.
func (s *Server) Reload() error {
	var errs []error
	if s.access != nil {
		errs = append(errs, s.access.Reopen())
	}
	if m := s.certs.Load(); m != nil {
		if err := m.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("server.tls: %w", err))
		}
	}
	return errors.Join(errs...)
}

// routeAt returns the route of a router.Route result: the rule's, or the
// default backend's for -1.
func (s *Server) routeAt(rule int) *route {
	if rule >= 0 {
		return &s.routes[rule]
	}
	return &s.fallback
}

var serverHeader = []string{"fe-php"}

// ServeHTTP routes r and wraps the backend call with what every request
// gets: a request id, limits, panic recovery and the access log line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := s.ids.forRequest(r)
	w.Header()["Server"] = serverHeader
	w.Header()["X-Request-Id"] = id
	r.Header["X-Request-Id"] = id

	rw := newResponseWriter(w, s, start)
	defer putResponseWriter(rw)
	rw.headers = s.headers
	rt := &s.early
	defer func() { s.finish(rw, r, rt, start, recover()) }() // r as the edge leaves it

	r = s.origin(r)
	if !s.hostAllowed(r.Host) {
		http.Error(rw, "421 misdirected request", http.StatusMisdirectedRequest)
		return
	}
	https := isHTTPS(r)
	if !https && s.httpsRedirect {
		s.redirectHTTPS(rw, r)
		return
	}
	if https && s.hsts != nil {
		w.Header()["Strict-Transport-Security"] = s.hsts
	}
	if r.TLS != nil && s.altSvc != nil {
		w.Header()["Alt-Svc"] = s.altSvc
	}

	cleaned, rule, ok := s.router.Route(r.URL.Path)
	if !ok {
		http.Error(rw, "400 bad request", http.StatusBadRequest)
		return
	}
	if cleaned != r.URL.Path {
		r.URL.Path, r.URL.RawPath = cleaned, ""
	}
	rt = s.routeAt(rule)
	rw.headers = rt.headers
	if !s.limitBody(rw, r) {
		return
	}
	rt.handler.ServeHTTP(rw, r)
}

// finish runs after the backend: it recovers a panic and logs the request.
// v is what the backend panicked with, if it did.
func (s *Server) finish(rw *responseWriter, r *http.Request, rt *route, start time.Time, v any) {
	if v != nil {
		if v == http.ErrAbortHandler {
			// A response that cannot be completed: logged like any other
			// (with what was sent), then the connection is broken.
			defer panic(v)
			s.logAccess(rw, r, rt, start)
			if rt.metrics != nil {
				rt.metrics.Observe(rw.status(), time.Since(start))
			}
			return
		}
		s.log.Error("panic serving request",
			slog.String("request_id", r.Header.Get("X-Request-Id")),
			slog.String("uri", r.RequestURI),
			slog.String("backend", rt.backend),
			slog.Any("panic", v),
			slog.String("stack", string(debug.Stack())))
		if rw.wroteHeader {
			// Too late for a 500: cut the connection so the client sees
			// a truncated response, not a complete wrong one.
			defer panic(http.ErrAbortHandler)
		} else {
			http.Error(rw, "500 internal server error", http.StatusInternalServerError)
		}
	}
	rw.extendWriteDeadline()
	s.logAccess(rw, r, rt, start)
	if rt.metrics != nil {
		rt.metrics.Observe(rw.status(), time.Since(start))
	}
}

// logAccess writes the request's access log line.
func (s *Server) logAccess(rw *responseWriter, r *http.Request, rt *route, start time.Time) {
	if s.access != nil {
		s.access.Log(&accesslog.Entry{
			Time:      start,
			RequestID: r.Header.Get("X-Request-Id"),
			Remote:    r.RemoteAddr,
			Method:    r.Method,
			URI:       r.RequestURI,
			Proto:     r.Proto,
			Status:    rw.status(),
			Bytes:     rw.bytes,
			Duration:  time.Since(start),
			Backend:   rt.backend,
			Rule:      rt.rule,
		})
	}
}

// limitBody enforces server.max_body_size and the read timeout on the
// request body. It answers 413 itself when the declared length is over.
func (s *Server) limitBody(rw *responseWriter, r *http.Request) bool {
	if r.ContentLength == 0 || r.Body == http.NoBody {
		return true
	}
	if s.maxBody > 0 && r.ContentLength > s.maxBody {
		rw.Header().Set("Connection", "close")
		http.Error(rw, "413 request entity too large", http.StatusRequestEntityTooLarge)
		return false
	}
	body := r.Body
	if s.maxBody > 0 {
		// The unwrapped writer: MaxBytesReader tells it to close the
		// connection once the limit is hit.
		body = http.MaxBytesReader(rw.ResponseWriter, body, s.maxBody)
	}
	if s.readTimeout > 0 || s.minRate > 0 {
		body = s.newDeadlineBody(body, rw.ResponseWriter)
	}
	r.Body = body
	return true
}

// Serve serves on lns until ctx is done, then shuts down gracefully:
// /readyz fails at once and, after admin.shutdown_delay, the public
// listeners close (new connections are refused), connections accepted
// but without a request yet get up to a second to send it (fresh.go), and
// in-flight requests get server.shutdown_timeout to finish; what is still
// open after that is closed. The admin listener stops last.
func (s *Server) Serve(ctx context.Context, lns *Listeners) error {
	c := &s.cfg.Server
	var accepting []acceptor // the HTTP/1 and HTTP/2 servers' listeners
	newHTTP := func(h http.Handler) (*http.Server, *freshConns) {
		f := new(freshConns)
		return &http.Server{
			ConnState:         f.track,
			Handler:           h,
			ReadHeaderTimeout: c.ReadHeaderTimeout.Duration,
			WriteTimeout:      s.writeTimeout,
			IdleTimeout:       c.IdleTimeout.Duration,
			MaxHeaderBytes:    int(c.MaxHeaderBytes),
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}, f
	}
	var servers []shutdowner
	errc := make(chan error, 4)
	// serve runs fn (a server's Serve) and closes the channel it returns
	// when fn has returned.
	serve := func(name string, fn func() error) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			err := fn()
			close(done)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				err = fmt.Errorf("%s: %w", name, err)
			} else {
				err = nil
			}
			errc <- err
		}()
		return done
	}

	if lns.HTTPS != nil {
		port := lns.HTTPS.Addr().(*net.TCPAddr).Port
		s.httpsPort = strconv.Itoa(port)
		if c.TLS.HTTP3 {
			// Also in a worker without the QUIC socket: another worker of
			// the supervisor's serves HTTP/3 on that port.
			s.altSvc = altSvcHeader(port)
		}
		// After the listeners are bound: ACME challenges may start at once.
		m, err := s.newCerts(ctx, lns)
		if err != nil {
			return err
		}
		defer m.Close()
		s.certs.Store(m)
	}
	plain, plainFresh := newHTTP(s.plainHandler())
	var plainServer interface {
		shutdowner
		Serve(net.Listener) error
	} = plain
	var fast []*http1.Server // fe-php's HTTP/1.1 loops, for the metrics
	if c.HTTP1FastPath {
		// fe-php's HTTP/1.1 loop for plain requests, net/http for the
		// rest (internal/http1).
		f := &http1.Server{Handler: plain.Handler, Fallback: plain}
		fast = append(fast, f)
		plainServer = f
	}
	servers = append(servers, plainServer)
	plainLn := s.wrapListener(lns.HTTP)
	accepting = append(accepting, acceptor{plainLn, plainFresh, serve("http", func() error { return plainServer.Serve(plainLn) })})
	attrs := []any{slog.String("listen", lns.HTTP.Addr().String())}
	if lns.HTTPS != nil {
		hs, hsFresh := newHTTP(s)
		hs.TLSConfig = s.certs.Load().TLSConfig() // its own copy: net/http adds to it
		if !c.HTTP2.Enable {
			// A copy: Clone shares the slice with the certificate manager's.
			hs.TLSConfig.NextProtos = slices.DeleteFunc(slices.Clone(hs.TLSConfig.NextProtos), func(p string) bool { return p == "h2" })
		}
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(c.HTTP2.Enable)
		hs.Protocols = &protos
		hs.HTTP2 = &http.HTTP2Config{
			MaxConcurrentStreams:          c.HTTP2.MaxConcurrentStreams,
			MaxReceiveBufferPerStream:     int(c.HTTP2.MaxReceiveBufferPerStream),
			MaxReceiveBufferPerConnection: int(c.HTTP2.MaxReceiveBufferPerConnection),
			MaxDecoderHeaderTableSize:     4096,
			// The protocol's default: a client may not send larger frames
			// than this whatever it assumes (h2spec 4.2).
			MaxReadFrameSize: 16 << 10,
		}
		tlsLn := s.wrapListener(lns.HTTPS)
		serveTLS := func() error { return hs.ServeTLS(tlsLn, "", "") }
		var httpsServer shutdowner = hs
		if c.HTTP1FastPath {
			// The TLS handshake and HTTP/1.1 in fe-php's loop; HTTP/2 and
			// what the loop does not take in net/http. The loop's copy of
			// the TLS configuration: net/http's Serve changes its own.
			f := &http1.Server{Handler: hs.Handler, Fallback: hs, TLSConfig: hs.TLSConfig.Clone()}
			fast = append(fast, f)
			serveTLS = func() error { return f.Serve(tlsLn) }
			httpsServer = f
		}
		servers = append(servers, httpsServer)
		accepting = append(accepting, acceptor{tlsLn, hsFresh, serve("https", serveTLS)})
		attrs = append(attrs, slog.String("tls_listen", lns.HTTPS.Addr().String()))
	}
	if len(fast) > 0 && s.metrics != nil {
		s.metrics.HTTP1(func() (served, handedOff uint64) {
			for _, f := range fast {
				n, h := f.Stats()
				served, handedOff = served+n, handedOff+h
			}
			return served, handedOff
		})
	}
	if lns.QUIC != nil {
		h3 := s.newHTTP3()
		servers = append(servers, h3)
		serve("http3", func() error { return h3.Serve(lns.QUIC) })
		attrs = append(attrs, slog.String("http3", lns.QUIC.LocalAddr().String()))
	}
	var admin *http.Server
	if lns.Admin != nil && s.metrics != nil {
		admin = s.newAdmin()
		serve("admin", func() error { return admin.Serve(lns.Admin) })
		attrs = append(attrs, slog.String("admin", lns.Admin.Addr().String()))
	}
	// Ready first: a log line saying it serves means the supervisor (or
	// systemd) has been told.
	if s.OnServing != nil {
		s.OnServing()
	}
	level, msg := slog.LevelInfo, "serving"
	if s.Worker {
		level, msg = slog.LevelDebug, "worker serving"
		attrs = append(attrs, slog.Int("pid", os.Getpid()))
	}
	s.log.Log(ctx, level, msg, append(attrs, slog.String("config", s.cfg.File),
		slog.String("default_backend", s.cfg.Backend.DefaultBackend), slog.Int("rules", len(s.routes)))...)

	var err error
	select {
	case err = <-errc: // one listener failed: stop them all
	case <-ctx.Done():
		s.draining.Store(true)
		if d := s.cfg.Admin.ShutdownDelay.Duration; d > 0 && admin != nil {
			// Kubernetes' order: readiness fails, the endpoints controller
			// and load balancers stop sending, only then the listeners close.
			s.log.Info("draining: /readyz fails; the listeners close after shutdown_delay", slog.Duration("shutdown_delay", d))
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case err = <-errc:
			}
			t.Stop()
		}
	}
	s.draining.Store(true)
	grace := c.ShutdownTimeout.Duration
	s.log.Info("shutting down", slog.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stopAccepting(sctx, accepting)
	var wg sync.WaitGroup
	var late atomic.Bool
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
				late.Store(true)
				srv.Close()
			}
		})
	}
	wg.Wait()
	if late.Load() {
		s.log.Warn("grace period over, closed the connections still open")
	}
	if admin != nil {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if admin.Shutdown(actx) != nil {
			admin.Close()
		}
		cancel()
	}
	s.log.Info("stopped")
	return err
}

// shutdowner is an HTTP server of any protocol.
type shutdowner interface {
	Shutdown(context.Context) error
	Close() error
}
