//go:build fephp_bridge

package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/pebbletest"
)

// TestACMEEndToEnd runs the fe-php binary against Pebble, Let's Encrypt's
// test CA, on 127.0.0.1: fe-php obtains a certificate over ACME for a
// made-up domain (Pebble resolves it through a DNS stub of the test and
// validates the challenge against fe-php's own listeners, whose ports the
// test fixes in advance), serves it to HTTPS clients and PHP, renews it,
// and serves the stored one after a restart with the CA gone. Each
// challenge type is tested alone: Pebble validates the other one on a port
// nothing listens on (certmagic picks the type it tries first at random,
// and falls back to the other when it fails).
//
// What goes through the binary and what cannot: fe-php keeps certmagic's
// renewal check interval (10 minutes; no configuration key shortens it,
// deliberately), so a renewal found by the periodic check of a process
// that has been running for a while is not reached here. A renewal fe-php
// starts by itself is: certmagic checks every stored certificate when
// fe-php starts, and with the default interval it renews any certificate
// with less than 5 intervals (50 minutes) left. Pebble issues certificates
// valid for 10 minutes, so the first restart renews at once, and the
// running process swaps the renewed certificate in without another
// restart.
func TestACMEEndToEnd(t *testing.T) {
	t.Parallel()
	pebbletest.Build(t) // once, before anything starts

	// HTTP-01, renewal at a restart, a restart without the CA.
	t.Run("http-01", func(t *testing.T) {
		const validity = 10 * time.Minute
		e := newACMEEnv(t, validity, "http-01")

		// 1. No certificate in storage: fe-php obtains one in the
		// background.
		s := e.start(t)
		// One line a worker process: each manages the certificates, and
		// certmagic's storage locks make one of them obtain it.
		if n := logCount(s.Stderr(), "certs: no certificate in storage yet", "domain="+e.domain); n != s.Workers {
			t.Errorf("%d log lines say there is no stored certificate yet, want %d (one a worker)", n, s.Workers)
		}
		first := waitACMECert(t, e.tlsAddr, e.domain, e.roots, 90*time.Second, "the first certificate", nil)
		checkACMEChain(t, e.tlsAddr, e.domain, e.roots)
		if life := first.NotAfter.Sub(first.NotBefore); life > validity+time.Second {
			t.Errorf("the certificate is valid for %v, want at most Pebble's %v", life, validity)
		}
		// A client without SNI (by IP) gets the domain's certificate.
		if st, err := tlsHandshake(e.tlsAddr, "", nil, true); err != nil || st.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("a handshake without SNI: %v; want the domain's certificate", err)
		}
		acmeWantPHPOverHTTPS(t, e.tlsAddr, e.domain, e.roots, e.tlsPort)
		// Plain HTTP redirects to HTTPS (the challenge path excepted).
		resp, _ := hostGet(t, e.httpAddr, e.domain, "/info.php?a=1")
		if want := fmt.Sprintf("https://%s:%d/info.php?a=1", e.domain, e.tlsPort); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("plain HTTP: %d, Location %q; want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		waitFor(t, 10*time.Second, "fe-php to log the certificate obtained", func() bool {
			return logCount(s.Stderr(), "level=INFO", "certs: certificate obtained", "domain="+e.domain) == 1
		})
		if errs := acmeErrors(s.Stderr(), "tls-alpn-01"); errs != "" {
			t.Errorf("fe-php logged errors while obtaining the certificate:\n%s", errs)
		}
		http01, valid, invalid := pebbleValidations(e.pb, e.hostPort())
		t.Logf("first certificate, serial %x, valid %v; Pebble: %d authorization(s) valid, %d invalid (TLS-ALPN-01, when certmagic tried it first), %d HTTP-01 challenge(s) fetched from fe-php",
			first.SerialNumber, first.NotAfter.Sub(first.NotBefore), valid, invalid, http01)
		if valid != 1 || http01 != 1 {
			t.Errorf("Pebble validated %d authorization(s), fetched %d HTTP-01 challenge(s) from fe-php; want 1 and 1", valid, http01)
		}
		e.stop(t, s)

		// 2. Restart with the CA up: the stored certificate is loaded
		// before fe-php serves (no handshake fails), and, having less than
		// 50 minutes left, renewed at once; the running process then
		// serves the renewed one.
		s = e.start(t)
		if n := logCount(s.Stderr(), "level=INFO", "certs: loaded certificate from storage", "domain="+e.domain); n != s.Workers {
			t.Errorf("%d log lines say the stored certificate was loaded, want %d (one a worker)", n, s.Workers)
		}
		st, err := tlsHandshake(e.tlsAddr, e.domain, e.roots, false)
		if err != nil {
			t.Fatalf("the first handshake after a restart: %v", err)
		}
		t.Logf("first handshake after the restart: serial %x", st.PeerCertificates[0].SerialNumber)
		renewed := waitACMECert(t, e.tlsAddr, e.domain, e.roots, 90*time.Second, "a renewed certificate", func(c *x509.Certificate) bool {
			return c.SerialNumber.Cmp(first.SerialNumber) != 0
		})
		checkACMEChain(t, e.tlsAddr, e.domain, e.roots)
		if renewed.NotBefore.Before(first.NotBefore) {
			t.Errorf("the renewed certificate (not before %v) is older than the first (%v)", renewed.NotBefore, first.NotBefore)
		}
		waitFor(t, 10*time.Second, "fe-php to log the renewal", func() bool {
			return logCount(s.Stderr(), "level=INFO", "certs: certificate renewed", "domain="+e.domain) >= 1
		})
		// One renewal, by the worker that took the storage lock first. The
		// other may renew again once it has the lock: Pebble's 10-minute
		// certificates are always inside the renewal window (a real one,
		// renewed, is months outside it). Not more than one a worker.
		if n := logCount(s.Stderr(), "level=INFO", "certs: renewing certificate", "domain="+e.domain); n < 1 || n > s.Workers {
			t.Errorf("%d log lines say the certificate is being renewed, want 1 to %d (one a worker at most)", n, s.Workers)
		}
		if n := logCount(s.Stderr(), "certs: obtaining certificate"); n != 0 {
			t.Errorf("the restart obtained a new certificate (%d log lines) instead of renewing the stored one", n)
		}
		if errs := acmeErrors(s.Stderr(), "tls-alpn-01"); errs != "" {
			t.Errorf("fe-php logged errors while renewing:\n%s", errs)
		}
		acmeWantPHPOverHTTPS(t, e.tlsAddr, e.domain, e.roots, e.tlsPort)
		t.Logf("renewed certificate, serial %x", renewed.SerialNumber)
		e.stop(t, s)

		// 3. Restart with the CA gone: the stored (renewed) certificate is
		// served from the first handshake, without waiting for anything.
		e.pb.Stop()
		if _, err := e.pb.Client.Get(e.pb.Directory); err == nil {
			t.Fatal("Pebble still answers after being stopped")
		}
		s = e.start(t)
		st, err = tlsHandshake(e.tlsAddr, e.domain, e.roots, false)
		if err != nil {
			t.Fatalf("the first handshake after a restart without the CA: %v", err)
		}
		if got := st.PeerCertificates[0].SerialNumber; got.Cmp(renewed.SerialNumber) != 0 {
			t.Errorf("after a restart without the CA: serial %x, want the stored %x", got, renewed.SerialNumber)
		}
		if n := logCount(s.Stderr(), "level=INFO", "certs: loaded certificate from storage", "domain="+e.domain); n != s.Workers {
			t.Errorf("%d log lines say the stored certificate was loaded, want %d (one a worker)", n, s.Workers)
		}
		if n := logCount(s.Stderr(), "certs: obtaining certificate"); n != 0 {
			t.Errorf("a restart tried to obtain a new certificate (%d log lines)", n)
		}
		acmeWantPHPOverHTTPS(t, e.tlsAddr, e.domain, e.roots, e.tlsPort)
		// It tries to renew the certificate (less than 50 minutes left)
		// and cannot; SIGTERM must still stop it at once, exit code 0.
		e.stop(t, s)
	})

	// TLS-ALPN-01 alone: Pebble's HTTP-01 requests go to a port nothing
	// listens on, so the certificate can only come from the acme-tls/1
	// handshake that fe-php's own HTTPS listener answers.
	t.Run("tls-alpn-01", func(t *testing.T) {
		e := newACMEEnv(t, 90*24*time.Hour, "tls-alpn-01")
		s := e.start(t)
		leaf := waitACMECert(t, e.tlsAddr, e.domain, e.roots, 90*time.Second, "a certificate over TLS-ALPN-01", nil)
		checkACMEChain(t, e.tlsAddr, e.domain, e.roots)
		_, valid, invalid := pebbleValidations(e.pb, e.hostPort())
		t.Logf("certificate serial %x; Pebble: %d authorization(s) valid, %d invalid (HTTP-01, when certmagic tried it first)", leaf.SerialNumber, valid, invalid)
		if valid != 1 {
			t.Errorf("Pebble validated %d authorization(s), want 1", valid)
		}
		acmeWantPHPOverHTTPS(t, e.tlsAddr, e.domain, e.roots, e.tlsPort)
		e.stop(t, s)
	})
}

// acmeEnv is Pebble and the configuration of fe-php for one domain.
type acmeEnv struct {
	domain            string
	httpAddr, tlsAddr string // fe-php's listeners, fixed in advance
	tlsPort           int
	pb                *pebbletest.Pebble
	roots             *x509.CertPool // Pebble's issuing root
	cfg               string
}

// newACMEEnv picks fe-php's two ports, starts Pebble validating challenge
// ("http-01" or "tls-alpn-01") on fe-php's listener for it (and the other
// type on a port nothing listens on, so that it fails) and writes the
// configuration: [server.tls] for a new domain on Pebble, a storage
// directory of its own, PHP's test site.
func newACMEEnv(t *testing.T, validity time.Duration, challenge string) *acmeEnv {
	t.Helper()
	httpPort, tlsPort := freePorts(t)
	e := &acmeEnv{
		domain:   acmeDomain(t),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		tlsAddr:  fmt.Sprintf("127.0.0.1:%d", tlsPort),
		tlsPort:  tlsPort,
	}
	// The other challenge's validation goes to a port nothing listens on.
	pebbleHTTPPort, pebbleTLSPort := httpPort, tlsPort
	dead, _ := freePorts(t)
	for dead == httpPort || dead == tlsPort { // released above: the kernel may give it again
		dead, _ = freePorts(t)
	}
	switch challenge {
	case "http-01":
		pebbleTLSPort = dead
	case "tls-alpn-01":
		pebbleHTTPPort = dead
	default:
		t.Fatalf("challenge %q", challenge)
	}
	e.pb = pebbletest.Start(t, pebbletest.Options{HTTPPort: pebbleHTTPPort, TLSPort: pebbleTLSPort, Validity: validity, Domain: e.domain})
	e.roots = e.pb.IssuingRoot(t)
	root, _ := newPHPSiteDir(t)
	e.cfg = fmt.Sprintf(`[server]

[server.tls]
listen = %q
domains = [%q]
acme_email = "ops@fe-php.test"
acme_ca = %q
acme_ca_root = %q
storage_dir = %q

[php]
document_root = %q
worker_pool_size = 1
`, e.tlsAddr, e.domain, e.pb.Directory, e.pb.MiniCA, t.TempDir(), root)
	return e
}

// hostPort is the domain with the port of fe-php's plain listener, as in
// HTTP-01 validation URLs.
func (e *acmeEnv) hostPort() string {
	_, port, _ := net.SplitHostPort(e.httpAddr)
	return e.domain + ":" + port
}

// start starts fe-php on the environment's fixed ports.
func (e *acmeEnv) start(t *testing.T) *Server {
	t.Helper()
	s := startServerAt(t, e.httpAddr, e.cfg, nil)
	if s.Addr != e.httpAddr || s.TLSAddr != e.tlsAddr {
		t.Fatalf("fe-php serves on %s and %s, want %s and %s (the ports Pebble validates on)", s.Addr, s.TLSAddr, e.httpAddr, e.tlsAddr)
	}
	return s
}

// stop stops s with SIGTERM and wants exit code 0.
func (e *acmeEnv) stop(t *testing.T, s *Server) {
	t.Helper()
	if code := s.Stop(t); code != 0 {
		t.Errorf("fe-php exited with code %d on SIGTERM, want 0\nstderr:\n%s", code, tail(s.Stderr(), 4000))
	}
}

// acmeWantPHPOverHTTPS fetches /info.php over HTTP/2 on a connection
// verified against roots for domain, and wants PHP to see HTTPS.
func acmeWantPHPOverHTTPS(t *testing.T, tlsAddr, domain string, roots *x509.CertPool, tlsPort int) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: domain},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, body := fetchURL(t, c, "https://"+domain+"/info.php?via=acme")
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
	}
	sv := serverVars(t, resp, body)
	for k, want := range map[string]string{"HTTPS": "on", "REQUEST_SCHEME": "https", "SERVER_PORT": fmt.Sprint(tlsPort),
		"HTTP_HOST": domain, "QUERY_STRING": "via=acme"} {
		if got := fmt.Sprint(sv[k]); got != want {
			t.Errorf("over HTTPS: $_SERVER[%s] = %q, want %q", k, got, want)
		}
	}
}

// waitACMECert polls until tlsAddr presents, for SNI domain, a certificate
// that verifies against roots and that accept (nil: any) accepts.
func waitACMECert(t *testing.T, tlsAddr, domain string, roots *x509.CertPool, timeout time.Duration, what string, accept func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var last error
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		st, err := tlsHandshake(tlsAddr, domain, roots, false)
		if err == nil {
			leaf = st.PeerCertificates[0]
			if accept == nil || accept(leaf) {
				break
			}
			err = fmt.Errorf("serial %x not accepted yet", leaf.SerialNumber)
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last handshake: %v", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
	return leaf
}

// checkACMEChain checks the chain tlsAddr serves for domain explicitly:
// a client trusting only the system roots refuses it, and leaf plus
// intermediates verify against Pebble's root for the domain and for
// server authentication.
func checkACMEChain(t *testing.T, tlsAddr, domain string, roots *x509.CertPool) {
	t.Helper()
	if _, err := tlsHandshake(tlsAddr, domain, nil, false); err == nil {
		t.Error("a client trusting only the system roots accepted Pebble's certificate")
	}
	st, err := tlsHandshake(tlsAddr, domain, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := st.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: domain, Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the served chain does not verify against Pebble's root: %v", err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != domain {
		t.Errorf("certificate names %v, want [%s]", leaf.DNSNames, domain)
	}
}

// tlsHandshake connects to addr with SNI serverName (none if ""),
// verifying the chain against roots (nil: the system's) unless insecure.
func tlsHandshake(addr, serverName string, roots *x509.CertPool, insecure bool) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &tls.Dialer{Config: &tls.Config{
		ServerName:         serverName,
		RootCAs:            roots,
		InsecureSkipVerify: insecure,
		NextProtos:         []string{"h2", "http/1.1"},
	}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// acmeErrors is the error lines of a log but certmagic's about the
// challenge type the test made fail (Pebble validates it on a port nothing
// listens on; certmagic may try it first, then falls back to the other).
func acmeErrors(log, failingType string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=ERROR") && !strings.Contains(line, failingType) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// logCount is how many lines of log contain all of subs.
func logCount(log string, subs ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// acmeDomain is a test domain of its own for each run: acme-XXXXXXXX.test.
func acmeDomain(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "acme-" + hex.EncodeToString(b) + ".test"
}

// freePorts returns two distinct ports nothing listens on at 127.0.0.1
// now, for listeners that others must know before they are bound.
func freePorts(t *testing.T) (int, int) {
	t.Helper()
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1]
}

// validations reads Pebble's log: how many distinct HTTP-01 challenges it
// fetched from hostPort (domain:port), and how many authorizations it set
// valid and invalid. (It logs nothing per TLS-ALPN-01 attempt.)
func pebbleValidations(p *pebbletest.Pebble, hostPort string) (http01, valid, invalid int) {
	urls := map[string]bool{}
	log := p.Log.String()
	for line := range strings.Lines(log) {
		if _, url, ok := strings.Cut(line, "Attempting to validate w/ HTTP: "); ok && strings.HasPrefix(url, "http://"+hostPort+"/") {
			urls[strings.TrimSpace(url)] = true
		}
	}
	return len(urls), logCount(log, "set VALID by completed challenge"), logCount(log, "set INVALID by completed challenge")
}
