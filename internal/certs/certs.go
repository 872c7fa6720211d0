// Package certs provides the TLS configuration of fe-php's HTTPS and
// HTTP/3 listeners, from one of two sources:
//
//   - Static files: a PEM certificate (chain) and key, as nginx's
//     ssl_certificate. They are read again when they change, so that a
//     renewal by certbot, cert-manager or a deploy needs no restart, and
//     on Reload (SIGHUP). A broken new pair never replaces a working one.
//
//   - ACME, as Caddy does it, with github.com/caddyserver/certmagic:
//     certificates for the configured domains are obtained from Let's
//     Encrypt (or any ACME CA) with the HTTP-01 challenge, answered by
//     HTTPHandler on the plain-HTTP listener, or the TLS-ALPN-01
//     challenge, answered by TLSConfig on the HTTPS listener; they are
//     renewed in the background (a third of their lifetime before they
//     expire, or when the CA's renewal information says so), kept in a
//     storage directory across restarts, and OCSP responses are stapled
//     when the certificate names a responder.
//
// Use:
//
//	httpLn, _ := net.Listen("tcp", ":80")
//	httpsLn, _ := net.Listen("tcp", ":443")
//	m, err := certs.New(ctx, certs.Options{Domains: []string{"example.com"}, Email: "ops@example.com"})
//	...
//	defer m.Close()
//	go (&http.Server{Handler: m.HTTPHandler(redirectToHTTPS)}).Serve(httpLn)
//	(&http.Server{Handler: h, TLSConfig: m.TLSConfig()}).ServeTLS(httpsLn, "", "")
//
// Bind both listeners before New: ACME challenges may start right away,
// and certmagic, finding a challenge port free, would bind it itself for
// the duration of the challenge.
package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultStorageDir is where ACME accounts, keys and certificates are kept
// when Options.StorageDir is empty.
const DefaultStorageDir = "/var/lib/fe-php/certs"

// Options configures a Manager. Set either CertFile and KeyFile (static
// mode) or Domains (ACME mode); if both are set, the files win and the
// domains are ignored, with a warning.
type Options struct {
	// CertFile is a PEM certificate, leaf first, followed by its
	// intermediates. KeyFile is its PEM private key (PKCS #1, PKCS #8 or
	// SEC 1). Both are read at New, and again when either changes (the
	// first handshake after a change, checked at most once a second) or on
	// Reload.
	CertFile, KeyFile string

	// Domains are the host names to obtain certificates for over ACME
	// (used when CertFile is empty). Each must resolve to this server:
	// the CA connects to it on port 80 (HTTP-01) or 443 (TLS-ALPN-01).
	// Wildcards are not supported (they need the DNS-01 challenge); IP
	// addresses are, if the CA issues for them.
	Domains []string
	// Email is the ACME account's contact, for the CA's notices;
	// optional.
	Email string
	// CA is the ACME directory URL; "" is Let's Encrypt production.
	CA string
	// CARoot is a PEM file of CA certificates to trust, besides the
	// system's, for the ACME server's own HTTPS (a private CA, Pebble's
	// minica); "" trusts the system roots only.
	CARoot string
	// StorageDir keeps the ACME account, keys, certificates and OCSP
	// responses ("" is DefaultStorageDir). It is created, mode 0700, if
	// missing. Instances that share it (NFS) share certificates and
	// coordinate issuance through lock files.
	StorageDir string
	// HTTPChallengePort and TLSALPNChallengePort are the local ports on
	// which the CA's connections to port 80 and 443 arrive, when they are
	// not 80 and 443 (behind a port forward); 0 means 80 and 443. They
	// are where the plain-HTTP listener with HTTPHandler and the HTTPS
	// listener with TLSConfig run: certmagic then leaves them alone, and
	// binds a port itself only while a challenge is pending if nothing
	// listens there.
	HTTPChallengePort, TLSALPNChallengePort int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn a challenge
	// type off: HTTP-01 when there is no plain-HTTP listener on port 80,
	// TLS-ALPN-01 when port 443 is behind a proxy that terminates TLS.
	// With both enabled (the default), the ACME client tries one, then
	// the other if it fails, and remembers which one works.
	DisableHTTPChallenge, DisableTLSALPNChallenge bool

	// Logger receives the package's log: loads, reloads, issuance,
	// renewal and errors at Info and above; certmagic's step-by-step
	// lines at Debug. nil is slog.Default().
	Logger *slog.Logger

	// For tests: how often certmagic looks for certificates to renew
	// (0: 10 minutes) and which fraction of a certificate's lifetime
	// before expiry renewal starts (0: a third).
	renewCheckInterval time.Duration
	renewalWindowRatio float64
}

// Manager provides the TLS configuration of fe-php's listeners and keeps
// its certificates current. Its methods are safe for concurrent use.
type Manager struct {
	static *staticCert // static mode
	acme   *acmeCerts  // ACME mode
	tls    *tls.Config // TLSConfig hands out clones

	closeOnce sync.Once
}

// New checks opts and loads or starts managing the certificates.
//
// Static mode: the pair is read and checked now; a missing file, a file
// without PEM, or a key that does not match the certificate is an error
// that names the file. An expired (or not yet valid) certificate is
// logged as a warning only: a replacement is picked up without a
// restart, and the plain-HTTP listener stays up meanwhile.
//
// ACME mode: certificates already in StorageDir are loaded before New
// returns (bounded to a few seconds), so that a restart serves them from
// the first handshake. Missing ones are obtained in the background, with
// retries, so that New never waits for the CA: until a domain has its
// certificate, handshakes for it fail. ctx bounds New itself; the
// background work runs until Close.
func New(ctx context.Context, opts Options) (*Manager, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m := &Manager{tls: &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Cipher suites and curves: Go's defaults, which follow current
		// advice and track it from release to release.
		NextProtos: []string{"h2", "http/1.1"},
	}}
	switch {
	case opts.CertFile != "" || opts.KeyFile != "":
		if opts.CertFile == "" || opts.KeyFile == "" {
			return nil, errors.New("certs: a certificate file needs its key file, and the other way round")
		}
		if len(opts.Domains) > 0 {
			logger.Warn("certs: a certificate file is set; ignoring the ACME domains", "domains", opts.Domains)
		}
		s, err := newStaticCert(opts.CertFile, opts.KeyFile, logger)
		if err != nil {
			return nil, err
		}
		m.static = s
		m.tls.GetCertificate = s.getCertificate
	case len(opts.Domains) > 0:
		a, err := newACME(ctx, &opts, logger)
		if err != nil {
			return nil, err
		}
		m.acme = a
		m.tls.GetCertificate = a.getCertificate
		m.tls.NextProtos = append(m.tls.NextProtos, a.nextProtos()...)
	default:
		return nil, errors.New("certs: no certificate: set a certificate and key file, or domains for ACME")
	}
	return m, nil
}

// TLSConfig returns the configuration for the HTTPS listener (and, with
// NextProtos set to h3 by the HTTP/3 server, the QUIC one): TLS 1.2 and
// up, Go's cipher suites, ALPN h2 and http/1.1 (plus acme-tls/1 for the
// TLS-ALPN-01 challenge), and GetCertificate serving the current
// certificate, with its OCSP staple in ACME mode. Each call returns a new
// copy, which the caller may change.
func (m *Manager) TLSConfig() *tls.Config {
	return m.tls.Clone()
}

// HTTPHandler wraps the plain-HTTP listener's handler: in ACME mode it
// answers the CA's HTTP-01 requests (GET /.well-known/acme-challenge/...)
// and passes everything else to next. In static mode it returns next.
//
// next typically redirects to HTTPS; it must not redirect the challenge
// path itself, which is why this wrapper goes outside it.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	if m.acme == nil {
		return next
	}
	return m.acme.issuer.HTTPChallengeHandler(next)
}

// Reload re-reads the static certificate files now (for SIGHUP), changed
// or not. If the new pair cannot be used (a missing or malformed file, a
// key that does not match, a certificate that is not valid now) the
// current certificate stays and the error is returned for the caller to
// log. In ACME mode it does nothing: certmagic keeps the certificates
// current by itself.
func (m *Manager) Reload() error {
	if m.static == nil {
		return nil
	}
	return m.static.reload()
}

// Close stops the background work (renewal, OCSP updates, pending
// issuance) and waits for certmagic's maintenance goroutine to end. The
// TLS configurations already handed out keep serving the certificates
// in memory. Close is idempotent and always returns nil.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		if m.acme != nil {
			m.acme.close()
		}
	})
	return nil
}
