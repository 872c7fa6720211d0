package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/fe-php/fe-php/internal/certs"
	"github.com/fe-php/fe-php/internal/config"
	"github.com/fe-php/fe-php/internal/forwarded"
	"github.com/fe-php/fe-php/internal/phpreq"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// edge is what fe-php does at the edge of every request, before routing:
// who the client is (trusted proxies), which host it may ask for, HTTPS
// (redirect, HSTS, HTTP/3's Alt-Svc).
type edge struct {
	httpsPort     string // the HTTPS listener's port, for redirects ("" without TLS)
	httpsRedirect bool
	hsts          []string           // Strict-Transport-Security, nil for none
	altSvc        []string           // Alt-Svc for HTTP/3, nil for none
	allowedHosts  []string           // lower case; "*.example.com" for subdomains; nil: any
	fwd           *forwarded.Options // nil: no trusted proxies
	conflictOnce  sync.Once
}

// plainHandler serves the plain-HTTP listener: ACME's HTTP-01
// challenges first, then the site (or the redirect to HTTPS).
func (s *Server) plainHandler() http.Handler {
	if m := s.certs.Load(); m != nil {
		return m.HTTPHandler(s)
	}
	return s
}

// newCerts starts the TLS certificates of [server.tls].
func (s *Server) newCerts(ctx context.Context, lns *Listeners) (*certs.Manager, error) {
	t := &s.cfg.Server.TLS
	m, err := certs.New(ctx, certs.Options{
		CertFile:             t.CertFile,
		KeyFile:              t.KeyFile,
		Domains:              t.Domains,
		Email:                t.ACMEEmail,
		CA:                   t.ACMECA,
		CARoot:               t.ACMECARoot,
		StorageDir:           t.StorageDir,
		HTTPChallengePort:    lns.HTTP.Addr().(*net.TCPAddr).Port,
		TLSALPNChallengePort: lns.HTTPS.Addr().(*net.TCPAddr).Port,
		Logger:               s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	return m, nil
}

// wrapListener adds what every TCP listener does: the PROXY protocol.
func (s *Server) wrapListener(ln net.Listener) net.Listener {
	if s.fwd == nil || !s.cfg.Server.ProxyProtocol {
		return ln
	}
	return forwarded.Listener(ln, s.fwd.Trust, forwarded.DefaultHeaderTimeout)
}

// newHTTP3 is the HTTP/3 server beside the HTTPS one.
func (s *Server) newHTTP3() *http3.Server {
	c := &s.cfg.Server
	return &http3.Server{
		Handler:        s,
		TLSConfig:      http3.ConfigureTLSConfig(s.certs.Load().TLSConfig()),
		MaxHeaderBytes: int(c.MaxHeaderBytes),
		IdleTimeout:    c.IdleTimeout.Duration,
		QUICConfig: &quic.Config{
			MaxIncomingStreams:    int64(c.HTTP2.MaxConcurrentStreams),
			MaxIncomingUniStreams: 8,
		},
	}
}

// hostAllowed reports whether host (the Host header, maybe with a port)
// is one the configuration serves.
func (e *edge) hostAllowed(host string) bool {
	if e.allowedHosts == nil {
		return true
	}
	name := strings.ToLower(hostOnly(host))
	for _, a := range e.allowedHosts {
		if a == name || strings.HasPrefix(a, "*.") && strings.HasSuffix(name, a[1:]) && len(name) > len(a)-1 {
			return true
		}
	}
	return false
}

// redirectHTTPS answers a plain-HTTP request with a 308 to its HTTPS URL.
func (e *edge) redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if e.httpsPort != "443" {
		host += ":" + e.httpsPort
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusPermanentRedirect)
}

// hostOnly strips the port of a Host header value (and IPv6 brackets).
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

func altSvcHeader(port int) []string {
	return []string{`h3=":` + strconv.Itoa(port) + `"; ma=86400`}
}

// init sets the edge up from the configuration; the listeners' ports are
// filled in by Serve.
func (e *edge) init(c *config.Server) error {
	e.httpsRedirect = c.TLSOn() && c.HTTPSRedirect
	if len(c.TrustedProxies) > 0 {
		trust, err := forwarded.ParseTrust(c.TrustedProxies)
		if err != nil {
			return fmt.Errorf("server.trusted_proxies: %w", err)
		}
		headers, err := forwarded.ParseHeaders(c.ForwardedHeaders)
		if err != nil {
			return fmt.Errorf("server.forwarded_headers: %w", err)
		}
		e.fwd = &forwarded.Options{Trust: trust, UseHost: c.ForwardedHost, Headers: headers}
	}
	if c.TLSOn() && c.TLS.HSTS != "" {
		e.hsts = []string{c.TLS.HSTS}
	}
	for _, h := range c.AllowedHosts {
		e.allowedHosts = append(e.allowedHosts, strings.ToLower(h))
	}
	return nil
}

// origin applies what a trusted proxy says of the client to r: its
// address (for PHP and the access log), its host if forwarded_host, and
// its scheme and port (for PHP and the HTTPS redirect). A request from
// anyone else is left as it is, at no cost.
func (s *Server) origin(r *http.Request) *http.Request {
	if s.fwd == nil {
		return r
	}
	localPort := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		_, localPort, _ = net.SplitHostPort(a.String())
	}
	o := forwarded.Resolve(r, s.fwd, r.TLS != nil, localPort)
	if o.Conflict {
		s.conflictOnce.Do(func() {
			s.log.Warn("a trusted proxy sent both Forwarded and X-Forwarded-* headers: neither is believed "+
				"(the proxy passes on a client's own; strip it there, or set server.forwarded_headers)",
				slog.String("proxy", o.Peer.String()))
		})
	}
	if !o.Proxied {
		return r
	}
	r.RemoteAddr = o.RemoteAddr()
	if o.Host != "" {
		r.Host = o.Host
	}
	return phpreq.WithForwarded(r, &phpreq.Forwarded{Scheme: o.Scheme, ServerPort: o.ServerPort})
}

// isHTTPS reports whether the client's own connection is HTTPS: to fe-php,
// or to the trusted proxy in front.
func isHTTPS(r *http.Request) bool {
	if f := phpreq.ForwardedOf(r); f != nil && f.Scheme != "" {
		return f.Scheme == "https"
	}
	return r.TLS != nil
}
