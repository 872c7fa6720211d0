package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// staticCheckInterval is how often, at most, a handshake looks at the
// certificate files for a change: two stat calls, once a second, cost
// nothing next to a handshake, and a renewed certificate (certbot,
// cert-manager, a deploy) is picked up within a second.
const staticCheckInterval = time.Second

// staticCert serves a certificate and key read from PEM files, and reads
// them again when they change.
type staticCert struct {
	certFile, keyFile string
	logger            *slog.Logger
	interval          time.Duration

	cert      atomic.Pointer[tls.Certificate] // what handshakes get
	nextCheck atomic.Int64                    // unix nanos; the handshake that CASes it checks

	mu    sync.Mutex  // serializes loads; guards stamp
	stamp [2]fileInfo // the files as they were at the last load attempt
}

// fileInfo is what tells a file's content changed without reading it:
// identity (a rename over it, as certbot and Kubernetes secrets do),
// size and modification time (an in-place write).
type fileInfo struct {
	fi  os.FileInfo // nil: the file could not be stat'ed
	err string      // why not
}

func statFile(name string) fileInfo {
	fi, err := os.Stat(name) // follows symlinks: their target is what counts
	if err != nil {
		return fileInfo{err: err.Error()}
	}
	return fileInfo{fi: fi}
}

func (a fileInfo) same(b fileInfo) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil && a.err == b.err
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

func (s *staticCert) stat() [2]fileInfo {
	return [2]fileInfo{statFile(s.certFile), statFile(s.keyFile)}
}

// newStaticCert loads the pair for the first time. A missing, unreadable
// or malformed file, or a key that does not belong to the certificate, is
// an error; an expired or not yet valid certificate is only a warning,
// because refusing to start would take the plain-HTTP listener down too,
// and the renewed files, once they appear, are picked up without a
// restart.
func newStaticCert(certFile, keyFile string, logger *slog.Logger) (*staticCert, error) {
	s := &staticCert{certFile: certFile, keyFile: keyFile, logger: logger, interval: staticCheckInterval}
	s.stamp = s.stat()
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	s.cert.Store(cert)
	s.nextCheck.Store(time.Now().Add(s.interval).UnixNano())
	leaf := cert.Leaf
	logger.Info("certs: loaded certificate", "cert_file", certFile, "names", certNames(leaf),
		"not_after", leaf.NotAfter, "issuer", leaf.Issuer.String())
	if err := checkValidity(leaf, time.Now()); err != nil {
		logger.Warn("certs: serving a certificate that is not valid now", "cert_file", certFile, "error", err)
	}
	return s, nil
}

// getCertificate is the tls.Config.GetCertificate of the static mode: one
// certificate for every server name. At most once per interval the
// handshake that gets there first looks at the files and reloads them if
// they changed; the others do not wait for it.
func (s *staticCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now()
	if next := s.nextCheck.Load(); now.UnixNano() >= next &&
		s.nextCheck.CompareAndSwap(next, now.Add(s.interval).UnixNano()) {
		s.checkFiles(now)
	}
	return s.cert.Load(), nil
}

// checkFiles reloads the pair if the files changed since the last
// attempt. A broken new pair is logged once (per state of the files) and
// the current certificate stays.
func (s *staticCert) checkFiles(now time.Time) {
	if !s.mu.TryLock() {
		return // a Reload is at it
	}
	defer s.mu.Unlock()
	st := s.stat()
	if st[0].same(s.stamp[0]) && st[1].same(s.stamp[1]) {
		return
	}
	s.stamp = st // before reading: a write after this stat is seen next time
	cert, err := s.load(now)
	if err != nil {
		s.logger.Error("certs: certificate files changed but cannot be used; still serving the previous certificate",
			"cert_file", s.certFile, "key_file", s.keyFile, "error", err)
		return
	}
	s.swap(cert)
}

// reload reads the files now, changed or not.
func (s *staticCert) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stamp = s.stat()
	cert, err := s.load(time.Now())
	if err != nil {
		return err
	}
	s.swap(cert)
	return nil
}

// load reads and checks the pair for a reload: on top of what the first
// load checks, it refuses a certificate that is not valid now, since the
// one being served may still be.
func (s *staticCert) load(now time.Time) (*tls.Certificate, error) {
	cert, err := loadKeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, err
	}
	if err := checkValidity(cert.Leaf, now); err != nil {
		return nil, fmt.Errorf("certs: certificate %s: %w", s.certFile, err)
	}
	return cert, nil
}

func (s *staticCert) swap(cert *tls.Certificate) {
	s.cert.Store(cert)
	s.logger.Info("certs: reloaded certificate", "cert_file", s.certFile, "names", certNames(cert.Leaf),
		"not_after", cert.Leaf.NotAfter, "serial", cert.Leaf.SerialNumber.String())
}

// loadKeyPair reads a PEM certificate (chain) and its PEM private key,
// with errors that name the file at fault.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certs: reading certificate: %w", err)
	}
	if !hasPEMBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return nil, fmt.Errorf("certs: certificate %s: no PEM CERTIFICATE block", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: reading key: %w", err)
	}
	if !hasPEMBlock(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }) {
		return nil, fmt.Errorf("certs: key %s: no PEM PRIVATE KEY block", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("certs: key %s does not match certificate %s", keyFile, certFile)
		}
		return nil, fmt.Errorf("certs: certificate %s, key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

func hasPEMBlock(data []byte, typeOK func(string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if typeOK(b.Type) {
			return true
		}
	}
}

var (
	errExpired     = errors.New("expired")
	errNotYetValid = errors.New("not yet valid")
)

func checkValidity(leaf *x509.Certificate, now time.Time) error {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("%w on %s", errExpired, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("%w before %s", errNotYetValid, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// certNames is what a certificate is for, for the log.
func certNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	return names
}
