package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/pebbletest"
)

// The ACME tests run Pebble, Let's Encrypt's test CA, which validates
// challenges for real: it resolves the test domain through a DNS server
// of the test's (answering 127.0.0.1) and connects to the listeners the
// test serves with HTTPHandler and TLSConfig.

func TestMain(m *testing.M) {
	code := m.Run()
	pebbletest.Cleanup()
	os.Exit(code)
}

// acmeSite is a Manager serving a domain on its own plain and HTTPS
// listeners, with counters of the challenges they answered.
type acmeSite struct {
	m                 *Manager
	domain            string
	httpAddr, tlsAddr string
	http01, tlsALPN01 atomic.Int32
	logs              *syncBuffer
	pebble            *pebbletest.Pebble
	roots             *x509.CertPool // pebble's issuing root
	httpLn, httpsLn   net.Listener
	opts              Options
}

// newACMESite binds the listeners first (as the server must), starts
// pebble pointed at them, then the Manager, then serves.
func newACMESite(t *testing.T, domain string, validity time.Duration, configure func(*Options)) *acmeSite {
	t.Helper()
	s := &acmeSite{domain: domain, httpLn: listen(t), httpsLn: listen(t)}
	s.httpAddr, s.tlsAddr = s.httpLn.Addr().String(), s.httpsLn.Addr().String()
	s.pebble = pebbletest.Start(t, pebbletest.Options{HTTPPort: port(s.httpLn), TLSPort: port(s.httpsLn), Validity: validity})
	logger, logs := newTestLogger(t)
	s.logs = logs
	s.opts = Options{
		Domains:              []string{domain},
		Email:                "ops@fe-php.test",
		CA:                   s.pebble.Directory,
		CARoot:               s.pebble.MiniCA,
		StorageDir:           t.TempDir(),
		HTTPChallengePort:    port(s.httpLn),
		TLSALPNChallengePort: port(s.httpsLn),
		Logger:               logger,
	}
	if configure != nil {
		configure(&s.opts)
	}
	m, err := New(context.Background(), s.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s.m = m

	plain := m.HTTPHandler(hello)
	serveHTTP(t, s.httpLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			s.http01.Add(1)
		}
		plain.ServeHTTP(w, r)
	}))
	cfg := m.TLSConfig()
	getCert := cfg.GetCertificate
	cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == "acme-tls/1" {
			s.tlsALPN01.Add(1)
		}
		return getCert(h)
	}
	serveHTTPS(t, s.httpsLn, cfg, hello)
	s.roots = s.pebble.IssuingRoot(t)
	return s
}

// waitCert waits until the HTTPS listener serves a certificate for the
// domain that verifies against pebble's root, and returns it.
func (s *acmeSite) waitCert(t *testing.T, what string, accept func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	start := time.Now()
	waitFor(t, 20*time.Second, what, func() bool {
		st, err := handshake(s.tlsAddr, s.domain, s.roots)
		if err != nil {
			return false
		}
		leaf = st.PeerCertificates[0]
		return accept == nil || accept(leaf)
	})
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	return leaf
}

// checkChain verifies what the listener serves for the domain against
// pebble's issuing root, explicitly: leaf, intermediates, name, usage.
func (s *acmeSite) checkChain(t *testing.T) *x509.Certificate {
	t.Helper()
	if _, err := handshake(s.tlsAddr, s.domain, nil); err == nil {
		t.Fatal("a client trusting only the system roots accepted pebble's certificate")
	}
	// The chain as served, checked here rather than by the TLS client.
	c, err := tls.Dial("tcp", s.tlsAddr, &tls.Config{ServerName: s.domain, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	st := c.ConnectionState()
	c.Close()
	inter := x509.NewCertPool()
	for _, ic := range st.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	leaf := st.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: s.domain, Roots: s.roots, Intermediates: inter}); err != nil {
		t.Fatalf("served chain does not verify against pebble's root: %v", err)
	}
	if len(st.OCSPResponse) != 0 || len(leaf.OCSPServer) != 0 {
		t.Errorf("unexpected OCSP: staple %d bytes, responders %v", len(st.OCSPResponse), leaf.OCSPServer)
	}
	return leaf
}

// TestACMEHTTP01 obtains a certificate from pebble with HTTP-01 only,
// answered by HTTPHandler on the plain listener, then restarts the
// Manager on the same storage with pebble gone: the stored certificate is
// served from the first handshake after New.
func TestACMEHTTP01(t *testing.T) {
	t.Parallel()
	s := newACMESite(t, "http01.fe-php.test", 90*24*time.Hour, func(o *Options) { o.DisableTLSALPNChallenge = true })
	leaf := s.waitCert(t, "a certificate obtained over HTTP-01", nil)
	s.checkChain(t)
	if s.http01.Load() == 0 || s.tlsALPN01.Load() != 0 {
		t.Errorf("challenges answered: http-01 %d, tls-alpn-01 %d; want http-01 only", s.http01.Load(), s.tlsALPN01.Load())
	}
	if proto, body := get(t, s.tlsAddr, s.domain, s.roots); proto != "HTTP/2.0" || body != "hello from HTTP/2.0" {
		t.Errorf("GET over HTTPS: %s %q", proto, body)
	}
	// The plain listener passes everything but challenges to next.
	resp, err := http.Get("http://" + s.httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from HTTP/1.1" {
		t.Errorf("plain GET /: %q", body)
	}
	for _, line := range []string{"certs: obtaining certificate", "certs: certificate obtained"} {
		if s.logs.count("level=INFO", line, "domain="+s.domain) != 1 {
			t.Errorf("log lacks %q", line)
		}
	}
	if n := s.logs.count("level=ERROR"); n != 0 {
		t.Errorf("%d errors logged", n)
	}

	// Restart: pebble is gone, the storage stays.
	s.m.Close()
	if s.logs.count("stopped background certificate maintenance") != 1 {
		t.Error("Close did not stop certmagic's maintenance goroutine")
	}
	s.pebble.Stop()
	logger, logs := newTestLogger(t)
	opts := s.opts
	opts.Logger = logger
	start := time.Now()
	m2, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	t.Logf("New with a stored certificate took %v", time.Since(start).Round(time.Millisecond))
	ln := listen(t)
	serveHTTPS(t, ln, m2.TLSConfig(), hello)
	st, err := handshake(ln.Addr().String(), s.domain, s.roots) // no waiting
	if err != nil {
		t.Fatalf("first handshake after a restart: %v", err)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after a restart served serial %v, want the stored %v", got, leaf.SerialNumber)
	}
	if logs.count("level=INFO", "loaded certificate from storage", "domain="+s.domain) != 1 {
		t.Error("loading the stored certificate was not logged")
	}
	if logs.count("obtaining certificate") != 0 {
		t.Error("a restart obtained a new certificate instead of loading the stored one")
	}
}

// TestACMETLSALPN01 obtains a certificate with TLS-ALPN-01 only, answered
// by TLSConfig on the HTTPS listener itself.
func TestACMETLSALPN01(t *testing.T) {
	t.Parallel()
	s := newACMESite(t, "tlsalpn.fe-php.test", 90*24*time.Hour, func(o *Options) {
		o.DisableHTTPChallenge = true
		o.Email = "" // an account without contact: no prompt, no failure
	})
	s.waitCert(t, "a certificate obtained over TLS-ALPN-01", nil)
	leaf := s.checkChain(t)
	if s.tlsALPN01.Load() == 0 || s.http01.Load() != 0 {
		t.Errorf("challenges answered: http-01 %d, tls-alpn-01 %d; want tls-alpn-01 only", s.http01.Load(), s.tlsALPN01.Load())
	}
	if got := s.m.TLSConfig().NextProtos; strings.Join(got, ",") != "h2,http/1.1,acme-tls/1" {
		t.Errorf("NextProtos %v", got)
	}
	// The same certificate over HTTP/3 (QUIC hands certmagic a
	// ClientHelloInfo of its own).
	if body, got := get3(t, serveHTTP3(t, s.m.TLSConfig(), hello), s.domain, s.roots); body != "hello from HTTP/3.0" || got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("over HTTP/3: %q, serial %v, want %v", body, got.SerialNumber, leaf.SerialNumber)
	}
}

// TestACMERenewal has pebble issue certificates valid for a few seconds
// and certmagic check often: a renewed certificate (another serial) is
// served by the same listener and Manager, without a restart.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	const validity = 12 * time.Second
	s := newACMESite(t, "renew.fe-php.test", validity, func(o *Options) {
		o.renewCheckInterval = 250 * time.Millisecond
		o.renewalWindowRatio = 0.75 // renew 3 s into a 12 s certificate
	})
	first := s.waitCert(t, "the first certificate", nil)
	if life := first.NotAfter.Sub(first.NotBefore); life > validity {
		t.Fatalf("pebble issued a certificate valid %v, want %v", life, validity)
	}
	renewed := s.waitCert(t, "a renewed certificate", func(c *x509.Certificate) bool {
		return c.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if renewed.NotBefore.Before(first.NotBefore) {
		t.Errorf("renewed certificate is older than the first")
	}
	s.checkChain(t)
	waitFor(t, 5*time.Second, "the renewal to be logged", func() bool {
		return s.logs.count("level=INFO", "certs: certificate renewed", "domain="+s.domain) > 0
	})
}

// A Manager on the same storage as another (a sibling worker process, or
// another instance of a cluster) serves the certificate the other one
// obtained from its first handshake after it is stored, while its own
// obtain job still waits for the storage lock (certmagic polls it once a
// second, and would load the certificate only then).
func TestACMESharedStorage(t *testing.T) {
	t.Parallel()
	s := newACMESite(t, "shared.fe-php.test", 90*24*time.Hour, func(o *Options) { o.DisableTLSALPNChallenge = true })
	opts := s.opts
	opts.Logger, _ = newTestLogger(t)
	sibling, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sibling.Close() })
	ln := listen(t)
	serveHTTPS(t, ln, sibling.TLSConfig(), hello)
	if _, err := handshake(ln.Addr().String(), s.domain, s.roots); err == nil {
		t.Fatal("the sibling served a certificate before any was obtained")
	}

	leaf := s.waitCert(t, "the first Manager's certificate", nil)
	st, err := handshake(ln.Addr().String(), s.domain, s.roots)
	if err != nil {
		t.Fatalf("the sibling's first handshake after the certificate was stored: %v", err)
	}
	if got := st.PeerCertificates[0]; !got.Equal(leaf) {
		t.Errorf("the sibling serves serial %v, want the stored %v", got.SerialNumber, leaf.SerialNumber)
	}
}
