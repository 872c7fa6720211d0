// Package pebbletest runs Pebble, Let's Encrypt's ACME test server (a
// tool of go.mod), on 127.0.0.1 for tests, with a DNS stub that sends its
// validation to the test's own listeners.
package pebbletest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fe-php/fe-php/internal/testutil"
)

var build struct {
	once     sync.Once
	dir      string // temp dir holding the binary: Cleanup removes it
	bin, src string // the binary, Pebble's module directory (its test certificates)
	err      error
}

// Build builds Pebble once per test binary, and returns it with Pebble's
// module directory.
func Build(t testing.TB) (bin, src string) {
	t.Helper()
	b := &build
	b.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			b.err = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if b.dir, b.err = os.MkdirTemp("", "fe-php-pebble-"); b.err != nil {
			return
		}
		// Build first: it downloads the module into the module cache on a
		// machine that has never built it, where go list -m would still
		// report no directory for it.
		b.bin = filepath.Join(b.dir, "pebble")
		cmd := exec.Command("go", "build", "-o", b.bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building pebble (a tool of go.mod): %v\n%s", err, out)
			return
		}
		list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2")
		list.Dir = root
		if out, err = list.Output(); err != nil {
			b.err = fmt.Errorf("go list pebble: %v", err)
			return
		}
		if b.src = strings.TrimSpace(string(out)); b.src == "" {
			b.err = fmt.Errorf("go list -m: no directory for pebble's module (not in the module cache)")
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin, b.src
}

// Cleanup removes what Build made; TestMain calls it after the tests.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// Options configure one Pebble.
type Options struct {
	// HTTPPort and TLSPort are where its HTTP-01 and TLS-ALPN-01
	// validations connect (on 127.0.0.1).
	HTTPPort, TLSPort int
	// Validity is the lifetime of the certificates it issues.
	Validity time.Duration
	// Domain is the only name the DNS stub resolves (to 127.0.0.1);
	// "": every name.
	Domain string
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL; Mgmt the management API's base.
	Directory, Mgmt string
	// MiniCA is the PEM file of the CA of Pebble's own HTTPS.
	MiniCA string
	// Client trusts MiniCA.
	Client *http.Client
	// Log is what Pebble printed.
	Log  *testutil.SyncBuffer
	stop func()
}

// Start runs Pebble; it is killed when the test ends (or by Stop).
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	bin, src := Build(t)
	dnsAddr := startDNS(t, opts.Domain)
	listenAddr, mgmtAddr := freeAddrs(t, opts.HTTPPort, opts.TLSPort)
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress":           listenAddr,
		"managementListenAddress": mgmtAddr,
		"certificate":             filepath.Join(src, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(src, "test/certs/localhost/key.pem"),
		"httpPort":                opts.HTTPPort,
		"tlsPort":                 opts.TLSPort,
		"ocspResponderURL":        "", // no OCSP responder, as Let's Encrypt today
		"keyAlgorithm":            "ecdsa",
		// certificateValidityPeriod's successor in this Pebble.
		"profiles": map[string]any{
			"default": map[string]any{"description": "fe-php tests", "validityPeriod": int(opts.Validity / time.Second)},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dnsAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			out := logs.String()
			t.Logf("pebble:\n%s", out[max(0, len(out)-8000):])
		}
	})

	minica := filepath.Join(src, "test/certs/pebble.minica.pem")
	pemData, err := os.ReadFile(minica)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	p := &Pebble{
		Directory: "https://" + listenAddr + "/dir",
		Mgmt:      "https://" + mgmtAddr,
		MiniCA:    minica,
		Client:    &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}},
		Log:       logs,
		stop:      stop,
	}
	deadline := time.Now().Add(30 * time.Second)
	for !p.answers() {
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not listen within 30s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// answers reports whether the ACME directory and the management API answer.
func (p *Pebble) answers() bool {
	for _, u := range []string{p.Directory, p.Mgmt + "/roots/0"} {
		resp, err := p.Client.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// Stop kills Pebble now.
func (p *Pebble) Stop() { p.stop() }

// IssuingRoot is the root Pebble issues under (made at its start), from
// its management API.
func (p *Pebble) IssuingRoot(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.Client.Get(p.Mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebble's /roots/0 is not PEM: %q", data)
	}
	return pool
}

// startDNS serves, over TCP (all Pebble's -dnsserver client uses), A
// 127.0.0.1 for domain ("": every name) and no records for anything else,
// so that Pebble's validation connects to the test's listeners.
func startDNS(t testing.TB, domain string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fqdn := dns.Fqdn(domain)
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			switch {
			case domain != "" && !strings.EqualFold(q.Name, fqdn):
				m.Rcode = dns.RcodeNameError
			case q.Qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// freeAddrs returns two distinct addresses nothing listens on at
// 127.0.0.1 now, and neither on one of the avoid ports: those are the
// ports of the server under test, chosen (and released) before Pebble
// starts, which the kernel may hand out again.
func freeAddrs(t testing.TB, avoid ...int) (string, string) {
	t.Helper()
	var addrs []string
	for len(addrs) < 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until both are taken, so they differ
		if !slices.Contains(avoid, ln.Addr().(*net.TCPAddr).Port) {
			addrs = append(addrs, ln.Addr().String())
		}
	}
	return addrs[0], addrs[1]
}
