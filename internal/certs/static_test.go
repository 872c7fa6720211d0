package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestStatic serves static files through TLSConfig over a real listener
// and follows them as they are replaced: by a good pair (served within
// the check interval, no Reload), by garbage (the old certificate stays,
// one error is logged, Reload reports it), by a mismatched or expired
// pair (refused by Reload), and by a good pair again through Reload
// (served at once).
func TestStatic(t *testing.T) {
	t.Parallel()
	const name = "static.fe-php.test"
	now := time.Now()
	valid := func() selfSigned { return newSelfSigned(t, name, now.Add(-time.Hour), now.Add(24*time.Hour)) }
	a, b, c, e := valid(), valid(), valid(), valid()
	expired := newSelfSigned(t, name, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	roots := x509.NewCertPool()
	for _, s := range []selfSigned{a, b, c, e, expired} {
		roots.AddCert(s.cert)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certFile, a.certPEM)
	replaceFile(t, keyFile, a.keyPEM)
	logger, logs := newTestLogger(t)
	m, err := New(context.Background(), Options{CertFile: certFile, KeyFile: keyFile, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ln := listen(t)
	serveHTTPS(t, ln, m.TLSConfig(), hello)
	addr := ln.Addr().String()
	serial := func() string { return servedSerial(addr, name, roots) }

	// The first certificate, over HTTP/2, TLS 1.2 or newer.
	st, err := handshake(addr, name, roots)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(a.cert.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want the first certificate's %v", got, a.cert.SerialNumber)
	}
	if st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12 {
		t.Errorf("negotiated %q, version %x; want h2, TLS 1.2+", st.NegotiatedProtocol, st.Version)
	}
	if proto, body := get(t, addr, name, roots); proto != "HTTP/2.0" || body != "hello from HTTP/2.0" {
		t.Errorf("GET: %s %q", proto, body)
	}
	if body, leaf := get3(t, serveHTTP3(t, m.TLSConfig(), hello), name, roots); body != "hello from HTTP/3.0" || leaf.SerialNumber.Cmp(a.cert.SerialNumber) != 0 {
		t.Errorf("over HTTP/3: %q, serial %v", body, leaf.SerialNumber)
	}
	if v, err := tlsVersion(addr, name, roots, tls.VersionTLS11); err == nil {
		t.Errorf("a TLS 1.1 client got version %x, want a refusal", v)
	}

	// Replaced by a good pair: served after the next check, no Reload.
	start := time.Now()
	replaceFile(t, certFile, b.certPEM)
	replaceFile(t, keyFile, b.keyPEM)
	waitFor(t, 3*staticCheckInterval, "the replaced certificate", func() bool { return serial() == b.cert.SerialNumber.String() })
	t.Logf("new certificate served %v after the files changed", time.Since(start).Round(time.Millisecond))
	if logs.count("certs: reloaded certificate", "serial="+b.cert.SerialNumber.String()) != 1 {
		t.Error("the reload was not logged")
	}

	// Replaced by garbage (written in place): the old one stays, the error
	// is logged once, however often the files are checked again.
	const broken = "certificate files changed but cannot be used"
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*staticCheckInterval, "the broken files to be noticed", func() bool {
		if s := serial(); s != b.cert.SerialNumber.String() {
			t.Fatalf("served %q while the files are broken, want the previous certificate", s)
		}
		return logs.count(broken) > 0
	})
	m.static.checkFiles(time.Now())
	m.static.checkFiles(time.Now())
	if n := logs.count(broken); n != 1 {
		t.Errorf("broken files logged %d times, want once", n)
	}
	if n := logs.count(broken, certFile, "no PEM CERTIFICATE block"); n != 1 {
		t.Errorf("the error does not name the file and the fault:\n%s", logs.String())
	}
	err = m.Reload()
	if err == nil || !strings.Contains(err.Error(), certFile) || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("Reload with a broken certificate file: %v", err)
	}
	if s := serial(); s != b.cert.SerialNumber.String() {
		t.Fatalf("served %q after a failed Reload, want the previous certificate", s)
	}

	// A key that belongs to another certificate, and an expired pair: Reload
	// refuses both and keeps serving.
	replaceFile(t, certFile, c.certPEM) // key.pem is still b's
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Reload with a mismatched key: %v", err)
	}
	replaceFile(t, certFile, expired.certPEM)
	replaceFile(t, keyFile, expired.keyPEM)
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Reload with an expired certificate: %v", err)
	}
	if s := serial(); s != b.cert.SerialNumber.String() {
		t.Fatalf("served %q after refused reloads, want the previous certificate", s)
	}

	// A good pair and Reload (SIGHUP): served on the next handshake.
	replaceFile(t, certFile, e.certPEM)
	replaceFile(t, keyFile, e.keyPEM)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != e.cert.SerialNumber.String() {
		t.Fatalf("served %q right after Reload, want %v", s, e.cert.SerialNumber)
	}
}

// tlsVersion handshakes with at most version max.
func tlsVersion(addr, name string, roots *x509.CertPool, max uint16) (uint16, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, MaxVersion: max})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().Version, nil
}

// TestNewErrors checks that New refuses what cannot work, with errors that
// name the file or the setting at fault, and only warns about an expired
// static certificate.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	good := newSelfSigned(t, "x.fe-php.test", now.Add(-time.Hour), now.Add(time.Hour))
	other := newSelfSigned(t, "x.fe-php.test", now.Add(-time.Hour), now.Add(time.Hour))
	expired := newSelfSigned(t, "x.fe-php.test", now.Add(-2*time.Hour), now.Add(-time.Hour))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := write("cert.pem", good.certPEM), write("key.pem", good.keyPEM)
	otherKey := write("other-key.pem", other.keyPEM)
	garbage := write("garbage.pem", []byte("garbage"))
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name string
		opts Options
		want []string // substrings of the error
	}{
		{"nothing", Options{}, []string{"no certificate"}},
		{"cert without key", Options{CertFile: cert}, []string{"key file"}},
		{"missing cert", Options{CertFile: missing, KeyFile: key}, []string{missing, "no such file"}},
		{"missing key", Options{CertFile: cert, KeyFile: missing}, []string{missing, "no such file"}},
		{"cert not PEM", Options{CertFile: garbage, KeyFile: key}, []string{garbage, "no PEM CERTIFICATE"}},
		{"key not PEM", Options{CertFile: cert, KeyFile: garbage}, []string{garbage, "no PEM PRIVATE KEY"}},
		{"key swapped with cert", Options{CertFile: key, KeyFile: cert}, []string{key, "no PEM CERTIFICATE"}},
		{"mismatched key", Options{CertFile: cert, KeyFile: otherKey}, []string{otherKey, "does not match", cert}},
		{"wildcard", Options{Domains: []string{"*.example.com"}}, []string{"DNS-01"}},
		{"URL as domain", Options{Domains: []string{"https://example.com"}}, []string{"not a host name"}},
		{"port in domain", Options{Domains: []string{"example.com:443"}}, []string{"not a host name"}},
		{"internal name from Let's Encrypt", Options{Domains: []string{"app.localhost"}}, []string{"internal"}},
		{"empty domain", Options{Domains: []string{" "}}, []string{"empty domain"}},
		{"CA not a URL", Options{Domains: []string{"example.com"}, CA: "acme.example.com/dir"}, []string{"not an http(s) URL"}},
		{"no challenge", Options{Domains: []string{"example.com"}, DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}, []string{"both"}},
		{"missing CA root", Options{Domains: []string{"example.com"}, CARoot: missing}, []string{missing}},
		{"CA root not PEM", Options{Domains: []string{"example.com"}, CARoot: garbage}, []string{garbage, "no PEM"}},
		{"storage not creatable", Options{Domains: []string{"example.com"}, StorageDir: filepath.Join(garbage, "sub")}, []string{"storage directory", garbage}},
		{"storage not writable", Options{Domains: []string{"example.com"}, StorageDir: readOnlyDir(t)}, []string{"storage directory not writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, _ := newTestLogger(t)
			tc.opts.Logger = logger
			m, err := New(context.Background(), tc.opts)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("expired static certificate warns", func(t *testing.T) {
		logger, logs := newTestLogger(t)
		m, err := New(context.Background(), Options{
			CertFile: write("expired.pem", expired.certPEM), KeyFile: write("expired-key.pem", expired.keyPEM), Logger: logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if logs.count("level=WARN", "not valid now", "expired") != 1 {
			t.Errorf("no warning about the expired certificate:\n%s", logs.String())
		}
	})
}

// TestZapBridge checks certmagic's zap lines reach slog: Info demoted to
// Debug, warnings and errors kept, fields (With and per entry) as
// attributes.
func TestZapBridge(t *testing.T) {
	t.Parallel()
	buf := &syncBuffer{}
	zl := newZapLogger(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	zl.Info("chatty step")
	zl.Named("maintenance").With(zap.String("cache", "0x1")).Error("renewing", zap.Error(os.ErrPermission))
	out := buf.String()
	if strings.Contains(out, "chatty step") {
		t.Errorf("certmagic Info reached an Info-level log:\n%s", out)
	}
	for _, want := range []string{"level=ERROR", "msg=renewing", "logger=certmagic.maintenance", "cache=0x1", `error="permission denied"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in %q", want, out)
		}
	}
}

// readOnlyDir returns a directory the test cannot write to: a 0500 one,
// or for root, which writes anywhere else, /proc/self.
func readOnlyDir(t *testing.T) string {
	if os.Geteuid() == 0 {
		return "/proc/self" // not writable even for root
	}
	d := t.TempDir()
	if err := os.Chmod(d, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(d, 0o700) })
	return d
}
