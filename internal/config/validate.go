package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fe-php/fe-php/internal/compress"
	"github.com/fe-php/fe-php/internal/forwarded"
	"github.com/fe-php/fe-php/internal/headerops"
	"github.com/fe-php/fe-php/internal/phpini"
)

// validator collects every problem, each placed at its key's line.
type validator struct {
	file string
	pos  positions
	errs Errors
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	msg := fmt.Sprintf("%q is not one of %s", val, quoteList(allowed))
	for _, a := range allowed {
		if editDistance(val, a) <= 2 {
			msg += fmt.Sprintf(" (did you mean %q?)", a)
			break
		}
	}
	v.fail(key, "%s", msg)
}

func (v *validator) atLeast(key string, val, lo int) {
	if val < lo {
		v.fail(key, "must be at least %d, got %d", lo, val)
	}
}

// Validate checks a configuration built in code (Load validates files).
func (c *Config) Validate() error {
	if errs := c.validate(c.File, nil); len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *Config) validate(file string, pos positions) Errors {
	v := &validator{file: file, pos: pos}
	c.validateServer(v)
	c.validatePHP(v)
	c.validateBackend(v)
	c.validateAdmin(v)
	return v.errs
}

func (c *Config) validateServer(v *validator) {
	s := &c.Server
	if _, port, err := net.SplitHostPort(s.Listen); err != nil {
		v.fail("server.listen", "%q is not a host:port address (e.g. \"127.0.0.1:8080\" or \":80\")", s.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail("server.listen", "port %q is not a number from 0 to 65535", port)
	}
	if s.Workers < 0 || s.Workers > 64 {
		v.fail("server.workers", "must be from 0 (automatic) to 64, got %d", s.Workers)
	}
	if s.ClientBodyBufferSize < 0 {
		v.fail("server.client_body_buffer_size", "must not be negative")
	}
	if s.ClientBodyMinRate < 0 {
		v.fail("server.client_body_min_rate", "must not be negative")
	}
	if s.ClientBodyBuffersTotal != 0 && s.MaxBodySize > s.ClientBodyBuffersTotal {
		v.fail("server.client_body_buffers_total", "is %s, smaller than one body of server.max_body_size (%s): such a body could never be received", s.ClientBodyBuffersTotal, s.MaxBodySize)
	}
	if s.MaxHeaderBytes < 1024 {
		v.fail("server.max_header_bytes", "must be at least 1K, got %d bytes", s.MaxHeaderBytes)
	}
	c.validateEdge(v)
	v.oneOf("server.log_level", s.LogLevel, "debug", "info", "warn", "error")
	v.oneOf("server.log_format", s.LogFormat, "text", "json")
	v.oneOf("server.access_log.format", s.AccessLog.Format, "text", "json")
	if s.AccessLog.Output == "" {
		v.fail("server.access_log.output", `must be "off", "stdout", "stderr" or a file path`)
	}
}

func (c *Config) validateAdmin(v *validator) {
	a := &c.Admin
	if a.Listen != "" {
		if _, port, err := net.SplitHostPort(a.Listen); err != nil {
			v.fail("admin.listen", "%q is not a host:port address (e.g. \"127.0.0.1:9090\"), or \"\" for no admin listener", a.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.fail("admin.listen", "port %q is not a number from 0 to 65535", port)
		} else if n != 0 && (a.Listen == c.Server.Listen || a.Listen == c.Server.TLS.Listen) {
			v.fail("admin.listen", "%q is a public listener's address too: give the admin listener its own", a.Listen)
		}
	}
	if a.ShutdownDelay.Duration > 0 && a.Listen == "" {
		v.fail("admin.shutdown_delay", "is set, but admin.listen is empty: the delay is the time /readyz fails before the listeners close")
	}
	if a.PProf && a.Listen == "" {
		v.fail("admin.pprof", "is true, but admin.listen is empty: the profiles are served on the admin listener")
	}
}

// validateEdge checks the keys of TLS, proxies, host names and headers.
func (c *Config) validateEdge(v *validator) {
	s := &c.Server
	if s.ServerName != "" && !validHostName(s.ServerName, false) {
		v.fail("server.server_name", "%q is not a host name", s.ServerName)
	}
	for i, h := range s.AllowedHosts {
		if !validHostName(h, true) {
			v.fail(fmt.Sprintf("server.allowed_hosts[%d]", i), "%q is not a host name (a leading \"*.\" allows every subdomain; no port)", h)
		}
	}
	if _, err := forwarded.ParseTrust(s.TrustedProxies); err != nil {
		v.fail("server.trusted_proxies", "%v", err)
	}
	if _, err := forwarded.ParseHeaders(s.ForwardedHeaders); err != nil {
		v.fail("server.forwarded_headers", "%v", err)
	}
	if (s.ProxyProtocol || s.ForwardedHost) && len(s.TrustedProxies) == 0 {
		key := "server.proxy_protocol"
		if !s.ProxyProtocol {
			key = "server.forwarded_host"
		}
		v.fail(key, "is on, but server.trusted_proxies is empty: no proxy would be believed")
	}
	if _, err := headerops.Parse(s.Headers); err != nil {
		v.fail("server.headers", "%v", err)
	}
	if cc := s.Compression; cc.Enable {
		if _, err := compress.New(compress.Options{Algorithms: cc.Algorithms, MinLength: int64(cc.MinLength), Types: cc.Types}); err != nil {
			v.fail("server.compression", "%v", err)
		}
	}
	for i, r := range c.Backend.RoutingRules {
		if _, err := headerops.Parse(r.Headers); err != nil {
			v.fail(fmt.Sprintf("backend.routing_rules[%d].headers", i), "%v", err)
		}
	}

	t := &s.TLS
	if !s.TLSOn() {
		if t.HTTP3 {
			v.fail("server.tls.http3", "needs server.tls.listen: HTTP/3 is served beside HTTPS")
		}
		if t.CertFile != "" || len(t.Domains) > 0 {
			v.fail("server.tls.listen", "is empty, but server.tls has a certificate or domains: set it (e.g. \":443\") to serve HTTPS")
		}
		return
	}
	if _, port, err := net.SplitHostPort(t.Listen); err != nil {
		v.fail("server.tls.listen", "%q is not a host:port address (e.g. \":443\")", t.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail("server.tls.listen", "port %q is not a number from 0 to 65535", port)
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		v.fail("server.tls.cert_file", "cert_file and key_file go together")
	case t.CertFile != "":
		for key, f := range map[string]string{"server.tls.cert_file": t.CertFile, "server.tls.key_file": t.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				v.fail(key, "%s: %s", f, pathErr(err))
			}
		}
	case len(t.Domains) == 0:
		v.fail("server.tls", "has neither cert_file and key_file nor domains (for certificates by ACME)")
	}
	for i, d := range t.Domains {
		if !validHostName(d, true) {
			v.fail(fmt.Sprintf("server.tls.domains[%d]", i), "%q is not a host name", d)
		}
	}
	if t.ACMECA != "" && !strings.HasPrefix(t.ACMECA, "https://") {
		v.fail("server.tls.acme_ca", "%q is not an https:// ACME directory URL", t.ACMECA)
	}
	if t.ACMECARoot != "" {
		if _, err := os.Stat(t.ACMECARoot); err != nil {
			v.fail("server.tls.acme_ca_root", "%s: %s", t.ACMECARoot, pathErr(err))
		}
	}
	if t.HSTS != "" && !strings.HasPrefix(strings.ToLower(t.HSTS), "max-age=") {
		v.fail("server.tls.hsts", "%q must start with max-age= (e.g. \"max-age=31536000; includeSubDomains\")", t.HSTS)
	}
	h2 := &s.HTTP2
	v.atLeast("server.http2.max_concurrent_streams", h2.MaxConcurrentStreams, 1)
	if h2.MaxReceiveBufferPerStream < 16<<10 {
		v.fail("server.http2.max_receive_buffer_per_stream", "must be at least 16K, got %s", h2.MaxReceiveBufferPerStream)
	}
	if h2.MaxReceiveBufferPerConnection < h2.MaxReceiveBufferPerStream {
		v.fail("server.http2.max_receive_buffer_per_connection", "must be at least max_receive_buffer_per_stream (%s)", h2.MaxReceiveBufferPerStream)
	}
}

// validHostName accepts a DNS name or an IP address; with wildcard, a
// leading "*." too.
func validHostName(h string, wildcard bool) bool {
	if wildcard {
		h = strings.TrimPrefix(h, "*.")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (c *Config) validatePHP(v *validator) {
	p := &c.PHP
	v.atLeast("php.worker_pool_size", p.WorkerPoolSize, 1)
	v.atLeast("php.worker_max_requests", p.WorkerMaxRequests, 0)
	if f := p.INIFile; f != "" && f != "none" && c.UsedBackends()[BackendEmbedded] {
		if st, err := os.Stat(f); err != nil {
			v.fail("php.ini_file", "%s: %s (\"\" loads the build's php.ini, \"none\" none)", f, pathErr(err))
		} else if !st.Mode().IsRegular() {
			v.fail("php.ini_file", "%s is not a regular file", f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.INI)) {
		if strings.ContainsAny(k, "\x00\r\n=;[]") || k == "" {
			v.fail("php.ini."+k, "%q is not a php.ini setting name", k)
		} else if strings.ContainsAny(p.INI[k], "\x00\r\n") {
			v.fail("php.ini."+k, "the value holds a NUL, CR or LF")
		}
	}
	if p.ResponseBufferSize < 4<<10 {
		v.fail("php.response_buffer_size", "must be at least 4K, got %s", p.ResponseBufferSize)
	}
	if p.MaxTempFileSize < 0 {
		v.fail("php.max_temp_file_size", "must not be negative")
	}
	for i, name := range p.IndexFiles {
		if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			v.fail(fmt.Sprintf("php.index_files[%d]", i), "%q must be a plain file name (no slash, not a dotfile), like \"index.php\"", name)
		}
	}
	if fc := p.FrontController; fc != "" && (!strings.HasPrefix(fc, "/") || !strings.HasSuffix(fc, ".php")) {
		v.fail("php.front_controller", "%q must be a URL path to a PHP script, like \"/index.php\" (or \"\" for none)", fc)
	}
	if p.FPMEnabled() {
		c.validateFPM(v)
	}
	if p.Opcache.Enable {
		if p.Opcache.MemorySize < 8<<20 {
			v.fail("php.opcache.memory_size", "must be at least 8M, got %s", p.Opcache.MemorySize)
		}
		v.atLeast("php.opcache.max_files", p.Opcache.MaxFiles, 200)
	}
}

// validateFPM checks the FPM pools: the default one (php.fpm_socket) and
// the named ones ([php.fpm.NAME]). An address belongs to one pool only
// (its metrics are labelled by address).
func (c *Config) validateFPM(v *validator) {
	p := &c.PHP
	seen := map[string]string{}
	check := func(key string, as Addresses) {
		if len(as) == 0 {
			v.fail(key, "is empty: want a PHP-FPM address or a list of them")
		}
		for i, a := range as {
			k := key
			if len(as) > 1 {
				k = fmt.Sprintf("%s[%d]", key, i)
			}
			if err := checkFPMAddress(a); err != nil {
				v.fail(k, "%v", err)
			} else if other, dup := seen[a]; dup {
				v.fail(k, "%q is already in %s: an upstream belongs to one pool, once", a, other)
			} else {
				seen[a] = key
			}
		}
	}
	check("php.fpm_socket", p.FPMSocket)
	for _, name := range slices.Sorted(maps.Keys(p.FPM)) {
		key := "php.fpm." + name
		if !validPoolName(name) {
			v.fail(key, "%q is not a pool name: letters, digits, \"_\" and \"-\"", name)
		}
		check(key+".fpm_socket", p.FPM[name].FPMSocket)
		if b := p.FPM[name].Balance; b != "" {
			v.oneOf(key+".balance", b, BalanceLeastConn, BalanceRoundRobin, BalanceClientHash)
		}
	}
}

func validPoolName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// checkFPMAddress accepts "host:port" or a Unix socket path.
func checkFPMAddress(addr string) error {
	if strings.HasPrefix(addr, "/") {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			err = fmt.Errorf("port %q is not a number from 1 to 65535", port)
		} else if host == "" {
			err = fmt.Errorf("host is empty")
		}
	}
	if err != nil {
		return fmt.Errorf("%q is neither host:port (\"127.0.0.1:9000\") nor a Unix socket path (\"/run/php/php8.2-fpm.sock\"): %v", addr, err)
	}
	return nil
}

var backendNames = []string{BackendEmbedded, BackendFastCGI, BackendStatic}

func (c *Config) validateBackend(v *validator) {
	b := &c.Backend
	v.oneOf("backend.default_backend", b.DefaultBackend, backendNames...)

	cp := &b.ConnectionPool
	v.atLeast("backend.connection_pool.max_size", cp.MaxSize, 1)
	v.atLeast("backend.connection_pool.max_idle_time_secs", cp.MaxIdleTimeSecs, 0)
	v.atLeast("backend.connection_pool.max_lifetime_secs", cp.MaxLifetimeSecs, 0)
	v.atLeast("backend.connection_pool.connect_timeout_secs", cp.ConnectTimeoutSecs, 1)
	v.atLeast("backend.connection_pool.read_timeout_secs", cp.ReadTimeoutSecs, 1)
	v.atLeast("backend.connection_pool.wait_timeout_secs", cp.WaitTimeoutSecs, 0)
	v.atLeast("backend.connection_pool.keepalive_secs", cp.KeepaliveSecs, 0)
	v.oneOf("backend.connection_pool.balance", cp.Balance, BalanceLeastConn, BalanceRoundRobin, BalanceClientHash)
	if hp := cp.HealthCheckPath; hp != "" && (!strings.HasPrefix(hp, "/") || strings.ContainsAny(hp, "\x00\r\n")) {
		v.fail("backend.connection_pool.health_check_path", "%q must be a path starting with \"/\", like FPM's ping.path \"/ping\" (or \"\" for no active check)", hp)
	}
	if cp.HealthCheckPath != "" && cp.HealthCheckInterval.Duration < 100*time.Millisecond {
		v.fail("backend.connection_pool.health_check_interval", "must be at least 100ms, got %s", cp.HealthCheckInterval.Duration)
	}
	if cb := &cp.CircuitBreaker; cb.Enable {
		v.atLeast("backend.connection_pool.circuit_breaker.failure_threshold", cb.FailureThreshold, 1)
		v.atLeast("backend.connection_pool.circuit_breaker.success_threshold", cb.SuccessThreshold, 1)
		v.atLeast("backend.connection_pool.circuit_breaker.timeout_seconds", cb.TimeoutSeconds, 1)
	}

	sf := &b.StaticFiles
	for i, name := range sf.IndexFiles {
		if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			v.fail(fmt.Sprintf("backend.static_files.index_files[%d]", i), "%q must be a plain file name (no slash, not a dotfile)", name)
		}
	}

	for i, r := range b.RoutingRules {
		key := fmt.Sprintf("backend.routing_rules[%d]", i)
		c.validateRule(v, key, r)
	}

	used := c.UsedBackends()
	if used[BackendStatic] {
		switch {
		case !sf.Enable:
			v.fail("backend.static_files.enable", "is false, but %s routes to the static backend", c.whoUses(BackendStatic))
		case len(sf.IndexFiles) == 0 && b.DefaultBackend == BackendStatic:
			v.fail("backend.static_files.index_files", "is empty, but the static default backend needs an index file to fall back to")
		default:
			if st, err := os.Stat(sf.Root); err != nil {
				v.fail("backend.static_files.root", "static root %s: %v", sf.Root, pathErr(err))
			} else if !st.IsDir() {
				v.fail("backend.static_files.root", "static root %s is not a directory", sf.Root)
			}
		}
	}
	if used[BackendFastCGI] || used[BackendEmbedded] {
		if st, err := os.Stat(c.PHP.DocumentRoot); err != nil {
			v.fail("php.document_root", "PHP document root %s: %v", c.PHP.DocumentRoot, pathErr(err))
		} else if !st.IsDir() {
			v.fail("php.document_root", "PHP document root %s is not a directory", c.PHP.DocumentRoot)
		}
	}
	if used[BackendFastCGI] && !c.PHP.FPMEnabled() {
		v.fail("php.use_fpm", "is false, but %s routes to the fastcgi backend", c.whoUses(BackendFastCGI))
	}
}

func (c *Config) validateRule(v *validator, key string, r Rule) {
	p := r.Pattern
	switch p.Type {
	case PatternPrefix, PatternExact:
		if !strings.HasPrefix(p.Value, "/") {
			v.fail(key+".pattern.value", "%s pattern %q can never match: request paths start with \"/\"", p.Type, p.Value)
		}
	case PatternSuffix:
		if p.Value == "" {
			v.fail(key+".pattern.value", "suffix pattern is empty")
		}
	case PatternRegex:
		if _, err := regexp.Compile(p.Value); err != nil {
			v.fail(key+".pattern.value", "regex does not compile: %v", err)
		}
	case "":
		v.fail(key+".pattern.type", "missing: want one of %s", quoteList([]string{PatternPrefix, PatternSuffix, PatternExact, PatternRegex}))
	default:
		v.oneOf(key+".pattern.type", p.Type, PatternPrefix, PatternSuffix, PatternExact, PatternRegex)
	}
	ruleBackends := append(backendNames[:len(backendNames):len(backendNames)], BackendDeny)
	if r.Backend == "" {
		v.fail(key+".backend", "missing: want one of %s", quoteList(ruleBackends))
	} else {
		v.oneOf(key+".backend", r.Backend, ruleBackends...)
	}
	php := r.Backend == BackendEmbedded || r.Backend == BackendFastCGI
	for _, t := range []struct {
		name     string
		settings map[string]string
		admin    bool
	}{{"php_ini", r.PHPINI, false}, {"php_admin_ini", r.PHPAdminINI, true}} {
		if len(t.settings) > 0 && !php {
			v.fail(key+"."+t.name, "is set, but the rule's backend %q runs no PHP", r.Backend)
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(t.settings)) {
			if err := phpini.Check(name, t.settings[name], t.admin); err != nil {
				if errors.Is(err, phpini.ErrUnknown) {
					if s := closest(name, phpini.Names()); s != "" {
						err = fmt.Errorf("%w (did you mean %q?)", err, s)
					}
				}
				v.fail(key+"."+t.name+"."+name, "%v", err)
			}
		}
	}
	if r.FPM != "" {
		if r.Backend != BackendFastCGI {
			v.fail(key+".fpm", "is set, but the rule's backend is %q: a named FPM pool serves fastcgi rules only", r.Backend)
		} else if _, ok := c.PHP.FPM[r.FPM]; !ok {
			msg := fmt.Sprintf("no FPM pool named %q: define it as [php.fpm.%s] with its fpm_socket", r.FPM, r.FPM)
			if s := closest(r.FPM, slices.Sorted(maps.Keys(c.PHP.FPM))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			v.fail(key+".fpm", "%s", msg)
		}
	}
	if !php && (r.RequestTerminateTimeout != nil || r.RequestSlowlogTimeout != nil) {
		v.fail(key, "sets a PHP request timeout, but the rule's backend %q runs no PHP", r.Backend)
	}
}

// closest returns the name of names nearest to bad, if one is near.
func closest(bad string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(bad, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// whoUses names what routes to backend, for error messages.
func (c *Config) whoUses(backend string) string {
	if c.Backend.DefaultBackend == backend {
		return "backend.default_backend"
	}
	for i, r := range c.Backend.RoutingRules {
		if r.Backend == backend {
			return fmt.Sprintf("backend.routing_rules[%d]", i)
		}
	}
	return "a rule"
}

func pathErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
