package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// storedLoadTimeout bounds how long New waits for certificates already in
// storage to be loaded into memory (a disk read; an OCSP fetch at worst).
// Past it New returns anyway and they arrive in the background.
const storedLoadTimeout = 5 * time.Second

// acmeCerts is the ACME mode: a certmagic.Config and cache of its own, so
// that several Managers can live in one process and Close stops exactly
// this one's maintenance.
type acmeCerts struct {
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cache  *certmagic.Cache
	logger *slog.Logger
	cancel context.CancelFunc // stops obtain and renew jobs started by New
	cached chan struct{}      // a certificate entered the cache (1-buffered wake-up)

	domains []string
	mu      sync.Mutex
	tried   map[string]time.Time // the last storage load of a missing certificate, by name
}

// newACME sets up certmagic for opts and starts managing opts.Domains:
// certificates already in storage are loaded before it returns; missing
// ones are obtained in the background, retried with backoff on failure.
func newACME(ctx context.Context, opts *Options, logger *slog.Logger) (*acmeCerts, error) {
	domains, err := checkDomains(opts.Domains, opts.CA)
	if err != nil {
		return nil, err
	}
	if opts.CA != "" {
		u, err := url.Parse(opts.CA)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("certs: ACME directory %q: not an http(s) URL", opts.CA)
		}
	}
	if opts.DisableHTTPChallenge && opts.DisableTLSALPNChallenge {
		return nil, fmt.Errorf("certs: both the HTTP-01 and the TLS-ALPN-01 challenge are disabled: no way to prove the domains")
	}
	for _, p := range []int{opts.HTTPChallengePort, opts.TLSALPNChallengePort} {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("certs: challenge port %d out of range", p)
		}
	}
	var roots *x509.CertPool
	if opts.CARoot != "" {
		if roots, err = loadRoots(opts.CARoot); err != nil {
			return nil, err
		}
	}
	dir := opts.StorageDir
	if dir == "" {
		dir = DefaultStorageDir
	}
	// Fail now, with the path, rather than at the first obtain attempt in
	// the background. Keys live here: owner only.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: storage directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return nil, fmt.Errorf("certs: storage directory not writable: %w", err)
	}
	f.Close()
	os.Remove(f.Name())

	a := &acmeCerts{logger: logger, cached: make(chan struct{}, 1), domains: domains, tried: map[string]time.Time{}}
	zl := newZapLogger(logger)
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.cfg, nil },
		RenewCheckInterval: opts.renewCheckInterval, // 0: certmagic's 10 minutes
		Logger:             zl,
	})
	a.cfg = certmagic.New(a.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: dir},
		Logger:             zl,
		RenewalWindowRatio: opts.renewalWindowRatio, // 0: certmagic's 1/3 of the lifetime (and ARI)
		// Clients that send no SNI (by IP, old health checks) get the
		// first domain's certificate rather than a handshake failure.
		DefaultServerName: domains[0],
		OnEvent:           a.onEvent,
		// tls_get_certificate fires on every handshake; nothing here
		// wants it.
		ShouldEmitFunc: func(event string) bool { return event != "tls_get_certificate" },
	})
	a.issuer = certmagic.NewACMEIssuer(a.cfg, certmagic.ACMEIssuer{
		CA:     opts.CA, // "": Let's Encrypt production (with its staging CA to retry failures on)
		Email:  opts.Email,
		Agreed: true, // configuring ACME is agreeing to the CA's terms: there is no one to ask
		// Our own listeners answer the challenges (HTTPHandler, and
		// TLSConfig's GetCertificate); certmagic only binds the ports
		// itself if nothing listens there.
		DisableHTTPChallenge:    opts.DisableHTTPChallenge,
		DisableTLSALPNChallenge: opts.DisableTLSALPNChallenge,
		AltHTTPPort:             opts.HTTPChallengePort,
		AltTLSALPNPort:          opts.TLSALPNChallengePort,
		TrustedRoots:            roots,
		Logger:                  zl,
	})
	a.cfg.Issuers = []certmagic.Issuer{a.issuer}

	// Which certificates are already in storage: those New waits for.
	var stored []string
	for _, d := range domains {
		if a.cfg.Storage.Exists(ctx, certmagic.StorageKeys.SiteCert(a.issuer.IssuerKey(), d)) {
			stored = append(stored, d)
		} else {
			logger.Info("certs: no certificate in storage yet; obtaining one in the background",
				"domain", d, "ca", a.issuer.CA, "storage", dir)
		}
	}

	// Management outlives New's ctx (it lasts until Close) but keeps its
	// values.
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	// Asynchronous: a CA that is down or a DNS record not yet pointing
	// here must not keep the server from starting (plain HTTP, the other
	// domains). certmagic retries failures with backoff (1 minute, then
	// growing, for up to 30 days) and renews at the start if needed.
	if err := a.cfg.ManageAsync(mctx, domains); err != nil {
		a.close()
		return nil, fmt.Errorf("certs: managing %v: %w", domains, err)
	}
	a.waitCached(ctx, stored)
	return a, nil
}

// getCertificate is certmagic's, except that a handshake for a domain
// with no certificate in memory looks in storage first: another process on the same storage, a sibling worker
// or another instance of a cluster, may have obtained it meanwhile, and
// certmagic would only find it when its own obtain job gets the lock.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := a.cfg.GetCertificate(hello)
	if err == nil {
		return cert, nil
	}
	name := strings.ToLower(hello.ServerName)
	if name == "" {
		name = a.domains[0]
	}
	if !slices.Contains(a.domains, name) {
		return cert, err
	}
	// A stat each miss (a miss is a failed handshake anyway); a load at
	// most once a second a name, in case the stored one is unusable. The
	// metadata is the last of the three files certmagic stores (key,
	// certificate, metadata): with only the first two there, a load
	// would fail and hold the next try back a second, while the other
	// process is about to finish.
	if !a.cfg.Storage.Exists(hello.Context(), certmagic.StorageKeys.SiteMeta(a.issuer.IssuerKey(), name)) {
		return cert, err
	}
	a.mu.Lock()
	recent := time.Since(a.tried[name]) < time.Second
	if !recent {
		a.tried[name] = time.Now()
	}
	a.mu.Unlock()
	if recent {
		return cert, err
	}
	if _, lerr := a.cfg.CacheManagedCertificate(hello.Context(), name); lerr != nil {
		return cert, err
	}
	return a.cfg.GetCertificate(hello)
}

// waitCached waits, for at most storedLoadTimeout, until each of names
// has a certificate in the cache, so that a restart serves the stored
// certificates from its first handshake.
func (a *acmeCerts) waitCached(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	timer := time.NewTimer(storedLoadTimeout)
	defer timer.Stop()
	for {
		missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
			certs := a.cache.AllMatchingCertificates(n)
			if len(certs) == 0 {
				return false
			}
			if leaf := certs[0].Leaf; leaf != nil {
				a.logger.Info("certs: loaded certificate from storage", "domain", n,
					"not_after", leaf.NotAfter, "issuer", leaf.Issuer.String())
			}
			return true
		})
		names = missing
		if len(missing) == 0 {
			return
		}
		select {
		case <-a.cached:
		case <-timer.C:
			a.logger.Warn("certs: stored certificates not loaded yet; continuing in the background", "domains", missing)
			return
		case <-ctx.Done():
			return
		}
	}
}

// onEvent logs what an operator wants to see at Info: issuance and
// renewal, and their failures (certmagic's own lines, with the
// details, are at Debug; its warnings and errors keep their level).
func (a *acmeCerts) onEvent(_ context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		if renewal {
			a.logger.Info("certs: renewing certificate", "domain", data["identifier"], "remaining", data["remaining"])
		} else {
			a.logger.Info("certs: obtaining certificate", "domain", data["identifier"])
		}
	case "cert_obtained":
		if renewal {
			a.logger.Info("certs: certificate renewed", "domain", data["identifier"], "issuer", data["issuer"])
		} else {
			a.logger.Info("certs: certificate obtained", "domain", data["identifier"], "issuer", data["issuer"])
		}
	case "cert_failed":
		a.logger.Error("certs: could not get certificate; will retry", "domain", data["identifier"],
			"renewal", renewal, "error", data["error"])
	case "cached_managed_cert":
		a.logger.Debug("certs: certificate loaded", "names", data["sans"])
		select {
		case a.cached <- struct{}{}:
		default:
		}
	}
	return nil
}

func (a *acmeCerts) nextProtos() []string {
	if a.issuer.DisableTLSALPNChallenge {
		return nil
	}
	// Last: Go's server picks the first of its own protocols the client
	// offers, and only an ACME validator offers acme-tls/1.
	return []string{acmez.ACMETLS1Protocol}
}

func (a *acmeCerts) close() {
	a.cancel()
	a.cache.Stop() // waits for the maintenance goroutine to end
}

// checkDomains normalizes names (lower case, no duplicates) and rejects
// what cannot be obtained by HTTP-01 or TLS-ALPN-01.
func checkDomains(names []string, ca string) ([]string, error) {
	var out []string
	for _, n := range names {
		d := strings.ToLower(strings.TrimSpace(n))
		letsEncrypt := ca == "" || strings.Contains(ca, "api.letsencrypt.org")
		isIP := net.ParseIP(d) != nil // an IP certificate (RFC 8738), if the CA issues them
		switch {
		case d == "":
			return nil, fmt.Errorf("certs: empty domain name")
		case strings.Contains(d, "*"):
			return nil, fmt.Errorf("certs: domain %q: wildcard certificates need the DNS-01 challenge, which fe-php does not do", n)
		case !isIP && (strings.ContainsAny(d, "/:") || !certmagic.SubjectQualifiesForCert(d)):
			return nil, fmt.Errorf("certs: domain %q: not a host name (no scheme, port or path)", n)
		case letsEncrypt && !certmagic.SubjectQualifiesForPublicCert(d):
			return nil, fmt.Errorf("certs: domain %q: Let's Encrypt does not issue certificates for internal names; set a CA of your own", n)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: no domains")
	}
	return out, nil
}

// loadRoots returns the system roots plus the PEM certificates in file.
func loadRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: ACME CA root: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("certs: ACME CA root %s: no PEM certificate", file)
	}
	return pool, nil
}
