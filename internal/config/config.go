// Package config loads, defaults and validates fe-php's TOML configuration.
//
// The keys follow the fe-php specification ([php], [php.opcache], [backend],
// [backend.connection_pool], [backend.connection_pool.circuit_breaker],
// [backend.static_files], [[backend.routing_rules]]) plus a [server]
// section for what every HTTP server needs. Every default lives in
// Default; every rule a config must satisfy lives in Validate. Errors
// name the file, the line and the key, so that a typo is never ignored.
package config

import (
	"maps"
	"runtime"
	"slices"
	"time"

	"github.com/fe-php/fe-php/internal/phpini"
)

// Backend names, as written in default_backend and routing rules.
const (
	BackendEmbedded = "embedded"
	BackendFastCGI  = "fastcgi"
	BackendStatic   = "static"
	// BackendDeny answers 403 without touching the filesystem or PHP: for
	// routing rules that keep a directory of an application off the web
	// (DokuWiki's /inc/, Nextcloud's /data/, phpMyAdmin's /setup/).
	BackendDeny = "deny"
)

// Balancing policies of backend.connection_pool.balance.
const (
	BalanceLeastConn  = "least_conn"
	BalanceRoundRobin = "round_robin"
	BalanceClientHash = "client_hash"
)

// Pattern types of a routing rule.
const (
	PatternPrefix = "prefix"
	PatternSuffix = "suffix"
	PatternExact  = "exact"
	PatternRegex  = "regex"
)

// Config is a whole fe-php configuration.
type Config struct {
	Server  Server  `toml:"server"`
	PHP     PHP     `toml:"php"`
	Backend Backend `toml:"backend"`
	Admin   Admin   `toml:"admin"`

	// File is the path the configuration was read from ("" if none).
	// Relative paths in the file are resolved against its directory.
	File string `toml:"-"`
}

// Server holds the HTTP listener's settings (not in the specification:
// every production server needs them).
type Server struct {
	// Listen is the TCP address to serve HTTP on, "host:port".
	Listen string `toml:"listen"`
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds how long one read of a request body may wait for
	// the client (an inactivity timeout, so that large uploads work).
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds how long one write of a response may wait for
	// the client (an inactivity timeout, like nginx's send_timeout).
	WriteTimeout Duration `toml:"write_timeout"`
	// IdleTimeout bounds how long a keep-alive connection waits for its
	// next request.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ShutdownTimeout is the grace period in-flight requests get on
	// SIGTERM or SIGINT before their connections are closed.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// Workers is how many worker processes serve, each a complete fe-php
	// with this configuration's sizes on the supervisor's listeners (0:
	// one, or two when embedded PHP is used, so that a PHP crash leaves a
	// worker serving). See WorkerCount.
	Workers int `toml:"workers"`
	// PIDFile, if set, is where the supervisor writes its process id
	// (fe-php reload and upgrade read it).
	PIDFile string `toml:"pid_file"`
	// MaxHeaderBytes bounds the size of a request's headers.
	MaxHeaderBytes Size `toml:"max_header_bytes"`
	// HTTP1FastPath serves HTTP/1.1 requests without a body, plain and
	// over TLS, through fe-php's own request loop (internal/http1); false
	// leaves every connection to Go's net/http.
	HTTP1FastPath bool `toml:"http1_fast_path"`
	// MaxBodySize bounds the size of a request body (413 beyond); 0 means
	// no limit.
	MaxBodySize Size `toml:"max_body_size"`
	// ClientBodyBufferSize is how much of a request body for PHP is held
	// in memory; the rest waits in a temporary file (nginx's
	// client_body_buffer_size). PHP gets a body only once it is whole.
	ClientBodyBufferSize Size `toml:"client_body_buffer_size"`
	// ClientBodyMinRate is the slowest average rate, in bytes a second,
	// a request body may arrive at once read_header_timeout has passed
	// (408 below it); 0 disables the check.
	ClientBodyMinRate Size `toml:"client_body_min_rate"`
	// ClientBodyBuffersTotal bounds the bytes all request bodies held for
	// PHP take at once, in memory and in temporary files (503 with
	// Retry-After beyond); 0 means no bound.
	ClientBodyBuffersTotal Size `toml:"client_body_buffers_total"`
	// TempDir holds the temporary files of request and response buffers
	// ("": the system's, $TMPDIR or /tmp). They are unlinked at once.
	TempDir string `toml:"temp_dir"`
	// LogLevel is the server log's level: debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is the server log's format: text or json.
	LogFormat string `toml:"log_format"`
	// AccessLog configures the line-per-request log.
	AccessLog AccessLog `toml:"access_log"`

	// ServerName is the SERVER_NAME PHP sees ("": the host the client
	// asked for, as nginx's $host when server_name is a wildcard).
	ServerName string `toml:"server_name"`
	// AllowedHosts, when set, are the only host names served (a leading
	// "*." matches any subdomain); other hosts get a 421.
	AllowedHosts []string `toml:"allowed_hosts"`
	// TrustedProxies are the peers (CIDRs or addresses, or "private")
	// whose Forwarded / X-Forwarded-* headers and PROXY protocol headers
	// set the client address, scheme and port fe-php and PHP see.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ForwardedHost makes a trusted proxy's X-Forwarded-Host / Forwarded
	// host= the request's host too.
	ForwardedHost bool `toml:"forwarded_host"`
	// ForwardedHeaders are the headers believed from trusted proxies:
	// "auto" (X-Forwarded-* or Forwarded, never both at once),
	// "forwarded" (RFC 7239's, preferred) or "x-forwarded".
	ForwardedHeaders string `toml:"forwarded_headers"`
	// ProxyProtocol reads a PROXY protocol (v1 or v2) header on every
	// connection of every listener; only trusted proxies' are believed.
	ProxyProtocol bool `toml:"proxy_protocol"`
	// Headers are response headers for every response: "Name" = value
	// sets it, "-Name" = "" removes it (routing rules may add their own).
	Headers map[string]string `toml:"headers"`
	// HTTPSRedirect makes the plain-HTTP listener answer 308 to https://
	// once TLS is on (ACME challenges excepted).
	HTTPSRedirect bool `toml:"https_redirect"`

	TLS         TLS         `toml:"tls"`
	HTTP2       HTTP2       `toml:"http2"`
	Compression Compression `toml:"compression"`
}

// Admin is the [admin] section: the operations listener (Prometheus
// metrics, health and readiness probes). It must stay on loopback or a
// private network: it has no authentication.
type Admin struct {
	// Listen is the admin HTTP listener's "host:port"; "" means none.
	Listen string `toml:"listen"`
	// ShutdownDelay is how long /readyz fails on SIGTERM before the public
	// listeners close (the time a load balancer or Kubernetes needs to stop
	// sending new requests); the drain of server.shutdown_timeout follows.
	ShutdownDelay Duration `toml:"shutdown_delay"`
	// PProf serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the admin listener, taken from a worker process.
	PProf bool `toml:"pprof"`
}

// TLS is the [server.tls] section: HTTPS, and HTTP/3 beside it.
type TLS struct {
	// Listen is the address to serve HTTPS on (":443"); "" means no TLS.
	Listen string `toml:"listen"`
	// CertFile and KeyFile are a certificate and its key (PEM), reloaded
	// when they change; without them, Domains get certificates by ACME.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// Domains are the names to get ACME certificates for.
	Domains []string `toml:"domains"`
	// ACMEEmail is the ACME account's contact.
	ACMEEmail string `toml:"acme_email"`
	// ACMECA is the ACME directory URL ("": Let's Encrypt).
	ACMECA string `toml:"acme_ca"`
	// ACMECARoot is a PEM file of the CA that signs the ACME server's own
	// HTTPS certificate, when it is not a public one (a test ACME server).
	ACMECARoot string `toml:"acme_ca_root"`
	// StorageDir keeps ACME accounts, keys and certificates.
	StorageDir string `toml:"storage_dir"`
	// HSTS is the Strict-Transport-Security value sent over HTTPS ("":
	// none), e.g. "max-age=31536000; includeSubDomains".
	HSTS string `toml:"hsts"`
	// HTTP3 serves HTTP/3 over QUIC on Listen's port (UDP), advertised
	// with Alt-Svc.
	HTTP3 bool `toml:"http3"`
}

// HTTP2 is the [server.http2] section: HTTP/2 over TLS.
type HTTP2 struct {
	Enable bool `toml:"enable"`
	// MaxConcurrentStreams bounds the requests one connection runs at once.
	MaxConcurrentStreams int `toml:"max_concurrent_streams"`
	// MaxReceiveBufferPerStream and MaxReceiveBufferPerConnection are the
	// flow-control windows: what a client may send before fe-php reads it.
	MaxReceiveBufferPerStream     Size `toml:"max_receive_buffer_per_stream"`
	MaxReceiveBufferPerConnection Size `toml:"max_receive_buffer_per_connection"`
}

// Compression is the [server.compression] section.
type Compression struct {
	Enable bool `toml:"enable"`
	// Algorithms are the codings offered, in preference order: "zstd",
	// "br", "gzip".
	Algorithms []string `toml:"algorithms"`
	// MinLength: shorter responses are sent as they are.
	MinLength Size `toml:"min_length"`
	// Types are the media types compressed ("text/*" for a family);
	// empty: the defaults of docs/configuration.md.
	Types []string `toml:"types"`
}

// TLSOn reports whether fe-php serves HTTPS.
func (s *Server) TLSOn() bool { return s.TLS.Listen != "" }

// AccessLog configures the access log.
type AccessLog struct {
	// Output is "off", "stdout", "stderr" or a file path.
	Output string `toml:"output"`
	// Format is "text" or "json".
	Format string `toml:"format"`
}

// PHP is the [php] section: how PHP is reached.
type PHP struct {
	// LibPHPPath is the ZTS embed libphp the embedded backend loads.
	LibPHPPath string `toml:"libphp_path"`
	// DocumentRoot is where PHP scripts live.
	DocumentRoot string `toml:"document_root"`
	// WorkerPoolSize is the number of PHP threads of the embedded backend.
	WorkerPoolSize int `toml:"worker_pool_size"`
	// WorkerMaxRequests recycles a PHP thread after this many requests
	// (0: never).
	WorkerMaxRequests int `toml:"worker_max_requests"`
	// UseFPM enables the fastcgi backend; unset means "enabled".
	UseFPM *bool `toml:"use_fpm"`
	// FPMSocket is PHP-FPM's address, "host:port" or a Unix socket path,
	// or a list of them (a farm: requests are balanced across them). It is
	// the default pool; FPM holds named ones.
	FPMSocket Addresses `toml:"fpm_socket"`
	// FPM are named pools of PHP-FPM upstreams ([php.fpm.NAME]), which a
	// routing rule's fpm key sends its requests to: fe-php's addition.
	FPM map[string]FPMPool `toml:"fpm"`
	// IndexFiles are the files tried, in order, for a request naming a
	// directory (nginx's index): the first that exists is run (a ".php"
	// script) or sent (any other file).
	IndexFiles []string `toml:"index_files"`
	// FrontController runs for paths that name no file or directory
	// (WordPress, Laravel: try_files $uri $uri/ /index.php); "" disables
	// it (such paths are 404s).
	FrontController string `toml:"front_controller"`
	// WaitTimeout bounds how long a request waits for a free PHP thread
	// of the embedded backend (503 after): fe-php's addition.
	WaitTimeout Duration `toml:"wait_timeout"`
	// INIFile is a php.ini the embedded backend loads instead of the
	// one its libphp was built to find ("": that one, e.g.
	// /usr/local/php-zts-embed/etc/php.ini and etc/conf.d/*.ini; "none":
	// no php.ini at all, fe-php's web defaults only): fe-php's addition.
	INIFile string `toml:"ini_file"`
	// INI overrides php.ini settings for embedded PHP ([php.ini] table):
	// fe-php's addition.
	INI map[string]string `toml:"ini"`
	// Opcache configures OPcache for embedded PHP.
	Opcache Opcache `toml:"opcache"`
	// ResponseBufferSize is how much of a PHP response (either PHP
	// backend) waits in memory for a slow client, so that PHP is free as
	// soon as the script ends (nginx's fastcgi_buffers): fe-php's addition.
	ResponseBufferSize Size `toml:"response_buffer_size"`
	// MaxTempFileSize is how much more waits in a temporary file; past
	// both, PHP waits for the client (nginx's
	// fastcgi_max_temp_file_size): fe-php's addition.
	MaxTempFileSize Size `toml:"max_temp_file_size"`
	// RequestTerminateTimeout bounds a PHP request's wall-clock time on
	// both PHP backends (PHP-FPM's request_terminate_timeout): past it the
	// script is interrupted (embedded) or its FastCGI request aborted, and
	// the client gets a 504. 0: no bound. max_execution_time counts CPU
	// time, as under FPM, so a script waiting on I/O needs this one.
	RequestTerminateTimeout Duration `toml:"request_terminate_timeout"`
	// RequestSlowlogTimeout logs the PHP backtrace of an embedded request
	// still running after it (PHP-FPM's request_slowlog_timeout; on
	// fastcgi, FPM's own slowlog does it). 0: off.
	RequestSlowlogTimeout Duration `toml:"request_slowlog_timeout"`
}

// FPMPool is a [php.fpm.NAME] section: a named pool of PHP-FPM upstreams.
type FPMPool struct {
	// FPMSocket is one address or a list, as php.fpm_socket.
	FPMSocket Addresses `toml:"fpm_socket"`
	// Balance overrides backend.connection_pool.balance ("": that one).
	Balance string `toml:"balance"`
}

// Opcache is the [php.opcache] section.
type Opcache struct {
	Enable             bool `toml:"enable"`
	MemorySize         Size `toml:"memory_size"`
	MaxFiles           int  `toml:"max_files"`
	ValidateTimestamps bool `toml:"validate_timestamps"`
}

// Backend is the [backend] section: which backend serves which path.
type Backend struct {
	// DefaultBackend serves requests no rule matches.
	DefaultBackend string `toml:"default_backend"`
	// EnableHybrid routes by RoutingRules; when false every request goes
	// to DefaultBackend.
	EnableHybrid   bool           `toml:"enable_hybrid"`
	ConnectionPool ConnectionPool `toml:"connection_pool"`
	StaticFiles    StaticFiles    `toml:"static_files"`
	RoutingRules   []Rule         `toml:"routing_rules"`
}

// ConnectionPool is the [backend.connection_pool] section (FastCGI).
type ConnectionPool struct {
	MaxSize            int `toml:"max_size"`
	MaxIdleTimeSecs    int `toml:"max_idle_time_secs"`
	MaxLifetimeSecs    int `toml:"max_lifetime_secs"`
	ConnectTimeoutSecs int `toml:"connect_timeout_secs"`
	// ReadTimeoutSecs bounds each wait for PHP-FPM's response (504 when
	// nothing was sent yet): fe-php's addition, like nginx's
	// fastcgi_read_timeout.
	ReadTimeoutSecs int `toml:"read_timeout_secs"`
	// WaitTimeoutSecs bounds how long a request waits for a free
	// connection when all max_size are busy (503 after): fe-php's addition.
	WaitTimeoutSecs int `toml:"wait_timeout_secs"`
	// KeepaliveSecs is how long an idle connection stays open for the
	// next request (it holds one FPM child meanwhile, which no other
	// client of that FPM can use); 0 closes every connection after its
	// request. max_idle_time_secs still bounds it: fe-php's addition.
	KeepaliveSecs int `toml:"keepalive_secs"`
	// Balance spreads requests over several FPM upstreams: "least_conn"
	// (fewest requests in flight), "round_robin" or "client_hash" (a
	// client sticks to one upstream while it is healthy).
	Balance string `toml:"balance"`
	// HealthCheckPath, when set, is requested on every upstream each
	// HealthCheckInterval (FPM's ping.path, e.g. "/ping"); an upstream
	// that fails it is out of rotation until a check passes.
	HealthCheckPath     string         `toml:"health_check_path"`
	HealthCheckInterval Duration       `toml:"health_check_interval"`
	CircuitBreaker      CircuitBreaker `toml:"circuit_breaker"`
}

// CircuitBreaker is the [backend.connection_pool.circuit_breaker] section.
type CircuitBreaker struct {
	Enable           bool `toml:"enable"`
	FailureThreshold int  `toml:"failure_threshold"`
	SuccessThreshold int  `toml:"success_threshold"`
	TimeoutSeconds   int  `toml:"timeout_seconds"`
}

// StaticFiles is the [backend.static_files] section.
type StaticFiles struct {
	Enable bool `toml:"enable"`
	// Root is the directory files are served from; "" means
	// php.document_root.
	Root string `toml:"root"`
	// IndexFiles are tried in order for a directory request.
	IndexFiles []string `toml:"index_files"`
	// CacheControl, when set, is sent as the Cache-Control header.
	CacheControl string `toml:"cache_control"`
	// Precompressed serves "file.br" / "file.gz" siblings to clients that
	// accept them.
	Precompressed bool `toml:"precompressed"`
	// AllowSymlinksOutsideRoot lets symlinks under Root point outside it.
	AllowSymlinksOutsideRoot bool `toml:"allow_symlinks_outside_root"`
}

// Rule is one [[backend.routing_rules]] entry.
type Rule struct {
	Pattern  Pattern `toml:"pattern"`
	Backend  string  `toml:"backend"`
	Priority int     `toml:"priority"`
	// PHPINI sets PHP directives for the requests the rule routes to a
	// PHP backend (Apache's php_value, FPM's PHP_VALUE): only those PHP
	// allows per directory. fe-php's addition.
	PHPINI map[string]string `toml:"php_ini"`
	// PHPAdminINI sets any PHP directive for those requests (Apache's
	// php_admin_value, FPM's PHP_ADMIN_VALUE); a script cannot change
	// them with ini_set(). fe-php's addition.
	PHPAdminINI map[string]string `toml:"php_admin_ini"`
	// Headers are response headers for the rule's responses, over
	// [server] headers: "Name" = value sets it, "-Name" = "" removes it.
	Headers map[string]string `toml:"headers"`
	// RequestTerminateTimeout and RequestSlowlogTimeout override the
	// [php] keys of the same names for the rule's requests.
	RequestTerminateTimeout *Duration `toml:"request_terminate_timeout"`
	RequestSlowlogTimeout   *Duration `toml:"request_slowlog_timeout"`
	// FPM names the [php.fpm.NAME] pool a fastcgi rule's requests go to
	// ("": the default pool, php.fpm_socket).
	FPM string `toml:"fpm"`
}

// PHPSettings returns the PHP settings of the requests routed by rule
// (an index into RoutingRules, or -1 for the default backend): the
// rule's, with the [php] timeouts where it sets none.
//
// On fastcgi, PHP-FPM keeps a PHP_VALUE or PHP_ADMIN_VALUE in the child
// for its later requests (it sets the directive's master value), so one
// path's settings would leak into the next request that child serves,
// whatever its path. Every fastcgi route therefore carries each directive
// some fastcgi rule sets: the rule's value, or else the base value, which
// is [php.ini]'s if set there, else the production php.ini's.
func (c *Config) PHPSettings(rule int) PHPSettings {
	s := PHPSettings{
		TerminateTimeout: c.PHP.RequestTerminateTimeout.Duration,
		SlowlogTimeout:   c.PHP.RequestSlowlogTimeout.Duration,
	}
	backend := c.Backend.DefaultBackend
	if rule >= 0 {
		r := &c.Backend.RoutingRules[rule]
		backend = r.Backend
		if r.RequestTerminateTimeout != nil {
			s.TerminateTimeout = r.RequestTerminateTimeout.Duration
		}
		if r.RequestSlowlogTimeout != nil {
			s.SlowlogTimeout = r.RequestSlowlogTimeout.Duration
		}
		s.INI, s.AdminINI = maps.Clone(r.PHPINI), maps.Clone(r.PHPAdminINI)
	}
	if backend != BackendFastCGI || !c.Backend.EnableHybrid {
		return s
	}
	for _, r := range c.Backend.RoutingRules {
		if r.Backend != BackendFastCGI {
			continue
		}
		for _, k := range slices.Concat(slices.Collect(maps.Keys(r.PHPINI)), slices.Collect(maps.Keys(r.PHPAdminINI))) {
			_, inINI := s.INI[k]
			_, inAdmin := s.AdminINI[k]
			if inINI || inAdmin {
				continue
			}
			if s.INI == nil {
				s.INI = map[string]string{}
			}
			s.INI[k] = c.baseINI(k)
		}
	}
	return s
}

// baseINI is the value of directive k for requests that set none.
func (c *Config) baseINI(k string) string {
	if v, ok := c.PHP.INI[k]; ok {
		return v
	}
	d, _ := phpini.Lookup(k)
	return d.Production
}

// PHPSettings are the per-request PHP settings of a route.
type PHPSettings struct {
	TerminateTimeout time.Duration
	SlowlogTimeout   time.Duration
	INI              map[string]string
	AdminINI         map[string]string
}

// Pattern says which request paths a rule matches.
type Pattern struct {
	Type  string `toml:"type"`
	Value string `toml:"value"`
}

// Default returns the configuration used for every key a file leaves out.
// This is the one place defaults live; docs/configuration.md lists them.
func Default() Config {
	return Config{
		Server: Server{
			Listen:                 "127.0.0.1:8080",
			ReadHeaderTimeout:      Duration{10 * time.Second},
			ReadTimeout:            Duration{60 * time.Second},
			WriteTimeout:           Duration{60 * time.Second},
			IdleTimeout:            Duration{120 * time.Second},
			ShutdownTimeout:        Duration{30 * time.Second},
			MaxHeaderBytes:         1 << 20,
			HTTP1FastPath:          true,
			MaxBodySize:            64 << 20,
			ClientBodyBufferSize:   128 << 10,
			ClientBodyMinRate:      1 << 10,
			ClientBodyBuffersTotal: 1 << 30,
			LogLevel:               "info",
			LogFormat:              "text",
			AccessLog:              AccessLog{Output: "stdout", Format: "text"},
			HTTPSRedirect:          true,
			ForwardedHeaders:       "auto",
			TLS:                    TLS{StorageDir: "/var/lib/fe-php/certs"},
			HTTP2: HTTP2{
				Enable:                        true,
				MaxConcurrentStreams:          100,
				MaxReceiveBufferPerStream:     1 << 20,
				MaxReceiveBufferPerConnection: 4 << 20,
			},
			Compression: Compression{
				Enable:     true,
				Algorithms: []string{"zstd", "br", "gzip"},
				MinLength:  1 << 10,
			},
		},
		PHP: PHP{
			LibPHPPath:         "/usr/local/php-zts-embed/lib/libphp.so",
			DocumentRoot:       "/var/www/html",
			WorkerPoolSize:     2 * runtime.NumCPU(),
			WorkerMaxRequests:  10000,
			FPMSocket:          Addresses{"127.0.0.1:9000"},
			FrontController:    "/index.php",
			IndexFiles:         []string{"index.php"},
			WaitTimeout:        Duration{10 * time.Second},
			ResponseBufferSize: 256 << 10,
			MaxTempFileSize:    1 << 30,
			Opcache: Opcache{
				Enable:             true,
				MemorySize:         128 << 20,
				MaxFiles:           10000,
				ValidateTimestamps: true,
			},
		},
		Backend: Backend{
			DefaultBackend: BackendEmbedded,
			EnableHybrid:   true,
			ConnectionPool: ConnectionPool{
				MaxSize:             50,
				MaxIdleTimeSecs:     300,
				MaxLifetimeSecs:     3600,
				ConnectTimeoutSecs:  10,
				ReadTimeoutSecs:     60,
				WaitTimeoutSecs:     10,
				KeepaliveSecs:       2,
				Balance:             BalanceLeastConn,
				HealthCheckInterval: Duration{5 * time.Second},
				CircuitBreaker: CircuitBreaker{
					Enable:           true,
					FailureThreshold: 10,
					SuccessThreshold: 3,
					TimeoutSeconds:   30,
				},
			},
			StaticFiles: StaticFiles{
				Enable:        true,
				IndexFiles:    []string{"index.html", "index.htm", "default.html"},
				Precompressed: true,
			},
		},
	}
}

// WorkerCount is the number of worker processes: server.workers, or when
// that is 0, 2 if embedded PHP serves some path (a worker that crashes
// then leaves the other serving while it is replaced) and 1 otherwise.
// Each worker has the whole configuration's sizes: worker_pool_size PHP
// threads, max_size FPM connections and so on are per worker, so that
// the kernel's choice of worker for a connection never leaves a request
// waiting for a thread while another worker has one free.
func (c *Config) WorkerCount() int {
	switch {
	case c.Server.Workers > 0:
		return c.Server.Workers
	case c.UsedBackends()[BackendEmbedded]:
		return 2
	}
	return 1
}

// FPMEnabled reports whether the fastcgi backend is enabled.
func (p *PHP) FPMEnabled() bool { return p.UseFPM == nil || *p.UseFPM }

// UsedBackends reports which backends some request can reach: the default
// backend (always reachable unless a rule catches every path, which is not
// worth proving) and every rule's backend when hybrid routing is on.
func (c *Config) UsedBackends() map[string]bool {
	used := map[string]bool{c.Backend.DefaultBackend: true}
	if c.Backend.EnableHybrid {
		for _, r := range c.Backend.RoutingRules {
			used[r.Backend] = true
		}
	}
	return used
}
