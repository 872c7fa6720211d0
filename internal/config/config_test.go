package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parse writes doc as fe-php.toml in a temp dir (with a "site" directory
// for static roots) and loads it.
func parse(t *testing.T, doc string) (*Config, Errors) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fe-php.toml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err == nil {
		return cfg, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is %T, want Errors: %v", err, err)
	}
	return nil, errs
}

// wantError asserts one of errs is at line and names key, containing msg.
func wantError(t *testing.T, errs Errors, line int, key, msg string) {
	t.Helper()
	for _, e := range errs {
		if e.Line == line && e.Key == key && strings.Contains(e.Msg, msg) {
			return
		}
	}
	t.Errorf("no error at line %d for %s containing %q; got:\n%v", line, key, msg, errs)
}

const staticOnly = `
[backend]
default_backend = "static"
[backend.static_files]
root = "site"
`

func TestDefaults(t *testing.T) {
	cfg, errs := parse(t, staticOnly)
	if errs != nil {
		t.Fatal(errs)
	}
	d := Default()
	if cfg.Server.Listen != d.Server.Listen || cfg.Server.MaxBodySize != 64<<20 {
		t.Errorf("server defaults not applied: %+v", cfg.Server)
	}
	if !cfg.Backend.EnableHybrid || !cfg.Backend.StaticFiles.Enable || !cfg.Backend.StaticFiles.Precompressed {
		t.Errorf("backend defaults not applied: %+v", cfg.Backend)
	}
	if got := cfg.Backend.StaticFiles.IndexFiles; len(got) != 3 || got[0] != "index.html" {
		t.Errorf("index_files default = %v", got)
	}
	if !filepath.IsAbs(cfg.Backend.StaticFiles.Root) || filepath.Base(cfg.Backend.StaticFiles.Root) != "site" {
		t.Errorf("relative root not resolved against the config's directory: %q", cfg.Backend.StaticFiles.Root)
	}
	if cfg.PHP.LibPHPPath != "/usr/local/php-zts-embed/lib/libphp.so" || cfg.PHP.FPMSocket.String() != "127.0.0.1:9000" {
		t.Errorf("php defaults not applied: %+v", cfg.PHP)
	}
}

// Every key of the spec, with the spec's example values.
func TestSpecKeys(t *testing.T) {
	cfg, errs := parse(t, `
[php]
libphp_path = "/usr/local/php-zts-embed/lib/libphp.so"
document_root = "site"
worker_pool_size = 8
worker_max_requests = 10000
use_fpm = true
fpm_socket = "/run/php/php8.3-fpm.sock"

[php.opcache]
enable = true
memory_size = "256M"
max_files = 10000
validate_timestamps = false

[backend]
default_backend = "static"
enable_hybrid = true

[backend.connection_pool]
max_size = 50
max_idle_time_secs = 300
max_lifetime_secs = 3600
connect_timeout_secs = 10

[backend.connection_pool.circuit_breaker]
enable = true
failure_threshold = 10
success_threshold = 3
timeout_seconds = 30

[backend.static_files]
enable = true
root = "site"
index_files = ["index.html", "index.htm", "default.html"]

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/static/" }
backend = "static"
priority = 100

[[backend.routing_rules]]
pattern = { type = "regex", value = "^/user/[0-9]+$" }
backend = "fastcgi"
priority = 70
`)
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.PHP.Opcache.MemorySize != 256<<20 || cfg.PHP.Opcache.ValidateTimestamps {
		t.Errorf("opcache = %+v", cfg.PHP.Opcache)
	}
	if cfg.PHP.WorkerPoolSize != 8 || !cfg.PHP.FPMEnabled() || cfg.PHP.FPMSocket.String() != "/run/php/php8.3-fpm.sock" {
		t.Errorf("php = %+v", cfg.PHP)
	}
	cb := cfg.Backend.ConnectionPool.CircuitBreaker
	if cfg.Backend.ConnectionPool.MaxSize != 50 || cb.FailureThreshold != 10 || cb.SuccessThreshold != 3 || cb.TimeoutSeconds != 30 {
		t.Errorf("pool = %+v", cfg.Backend.ConnectionPool)
	}
	if len(cfg.Backend.RoutingRules) != 2 || cfg.Backend.RoutingRules[1].Pattern.Value != "^/user/[0-9]+$" {
		t.Errorf("rules = %+v", cfg.Backend.RoutingRules)
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, errs := parse(t, staticOnly+`
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/a/" }
backend = "static"
prioirty = 3
`)
	wantError(t, errs, 10, "backend.routing_rules.prioirty", `unknown key (did you mean "priority"?)`)

	_, errs = parse(t, "[server]\nlisten = \":80\"\n\n[php]\ndocumnet_root = \"/x\"\n")
	wantError(t, errs, 5, "php.documnet_root", `did you mean "document_root"`)

	_, errs = parse(t, "[bakend]\ndefault_backend = \"static\"\n")
	wantError(t, errs, 1, "bakend", "unknown key")
}

func TestWrongTypes(t *testing.T) {
	for _, c := range []struct {
		doc, key, msg string
		line          int
	}{
		{"[php]\nworker_pool_size = \"eight\"\n", "php.worker_pool_size", "want an integer", 2},
		{"[php.opcache]\n\nenable = \"yes\"\n", "php.opcache.enable", "want true or false", 3},
		{"[php.opcache]\nmemory_size = \"lots\"\n", "php.opcache.memory_size", "invalid size", 2},
		{"[server]\nread_timeout = \"30 s\"\n", "server.read_timeout", "invalid duration", 2},
		{"[backend.static_files]\nindex_files = \"index.html\"\n", "backend.static_files.index_files", "want an array", 2},
	} {
		_, errs := parse(t, c.doc)
		wantError(t, errs, c.line, c.key, c.msg)
	}
}

func TestCrossChecks(t *testing.T) {
	_, errs := parse(t, `
[backend]
default_backend = "statik"

[backend.static_files]
root = "nowhere"

[[backend.routing_rules]]
pattern = { type = "regex", value = "^/user/[0-9+$" }
backend = "static"
priority = 1

[[backend.routing_rules]]
pattern = { type = "glob", value = "/a/*" }
backend = "embeded"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "api/" }
backend = "static"
`)
	wantError(t, errs, 3, "backend.default_backend", `did you mean "static"`)
	wantError(t, errs, 9, "backend.routing_rules[0].pattern.value", "regex does not compile")
	wantError(t, errs, 14, "backend.routing_rules[1].pattern.type", `"glob" is not one of`)
	wantError(t, errs, 15, "backend.routing_rules[1].backend", `did you mean "embedded"`)
	wantError(t, errs, 18, "backend.routing_rules[2].pattern.value", "can never match")
	wantError(t, errs, 6, "backend.static_files.root", "no such file or directory")
}

func TestBackendSwitches(t *testing.T) {
	_, errs := parse(t, staticOnly+"enable = false\n")
	wantError(t, errs, 6, "backend.static_files.enable", "routes to the static backend")

	_, errs = parse(t, "[php]\nuse_fpm = false\n[backend]\ndefault_backend = \"fastcgi\"\n")
	wantError(t, errs, 2, "php.use_fpm", "routes to the fastcgi backend")

	_, errs = parse(t, "[php]\nfpm_socket = \"localhost\"\n[backend]\ndefault_backend = \"fastcgi\"\n")
	wantError(t, errs, 2, "php.fpm_socket", "neither host:port")
}

func TestHybridOffIgnoresRuleBackends(t *testing.T) {
	// With enable_hybrid = false only the default backend is used, so a
	// disabled static backend named by a rule is not an error.
	cfg, errs := parse(t, `
[backend]
default_backend = "fastcgi"
enable_hybrid = false
[backend.static_files]
enable = false
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/s/" }
backend = "static"
`)
	if errs != nil {
		t.Fatal(errs)
	}
	if used := cfg.UsedBackends(); used["static"] || !used["fastcgi"] {
		t.Errorf("UsedBackends = %v", used)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"256M": 256 << 20, "1G": 1 << 30, "512K": 512 << 10, "100": 100, "256MB": 256 << 20, "64MiB": 64 << 20, "1k": 1024} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "12X", "1.5M", "256i"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if s := Size(256 << 20).String(); s != "256M" {
		t.Errorf("String = %q", s)
	}
}

func TestDurations(t *testing.T) {
	cfg, errs := parse(t, staticOnly+"[server]\nread_timeout = 30\nwrite_timeout = \"1m30s\"\nidle_timeout = \"0\"\n")
	if errs != nil {
		t.Fatal(errs)
	}
	s := cfg.Server
	if s.ReadTimeout.Duration != 30e9 || s.WriteTimeout.Duration != 90e9 || s.IdleTimeout.Duration != 0 {
		t.Errorf("durations = %v %v %v", s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, errs := parse(t, "[backend]\ndefault_backend = \"static\n")
	if len(errs) != 1 || errs[0].Line != 2 {
		t.Fatalf("got %v", errs)
	}
}

func TestRulePHPSettings(t *testing.T) {
	_, errs := parse(t, `
[backend]
default_backend = "fastcgi"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/a/" }
backend = "fastcgi"
php_ini = { allow_url_fopen = "0", "session.save_path" = "a\nb" }
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/b/" }
backend = "static"
php_admin_ini = { memory_limit = "1G" }
request_terminate_timeout = "5s"
[backend.static_files]
root = "site"
`)
	wantError(t, errs, 7, "backend.routing_rules[0].php_ini.allow_url_fopen", "move it to php_admin_ini")
	wantError(t, errs, 7, "backend.routing_rules[0].php_ini.session.save_path", "NUL, CR or LF")
	wantError(t, errs, 11, "backend.routing_rules[1].php_admin_ini", `backend "static" runs no PHP`)
}

func TestPHPSettingsResetOnFastCGI(t *testing.T) {
	cfg, errs := parse(t, `
[php]
request_terminate_timeout = "30s"
[php.ini]
memory_limit = "256M"
[backend]
default_backend = "fastcgi"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
php_ini = { upload_max_filesize = "64M" }
php_admin_ini = { memory_limit = "1G" }
request_terminate_timeout = "5m"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/e/" }
backend = "embedded"
php_ini = { max_input_vars = "5000" }
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/e2/" }
backend = "embedded"
`)
	if errs != nil {
		t.Fatal(errs)
	}
	admin := cfg.PHPSettings(0)
	if admin.TerminateTimeout != 5*time.Minute || admin.INI["upload_max_filesize"] != "64M" || admin.AdminINI["memory_limit"] != "1G" || len(admin.INI) != 1 {
		t.Errorf("the admin rule's settings: %+v", admin)
	}
	// Every other fastcgi route resets what a fastcgi rule sets: to
	// [php.ini]'s value, else the production php.ini's. Embedded routes
	// need no reset (PHP restores per-request values itself).
	def := cfg.PHPSettings(-1)
	if def.TerminateTimeout != 30*time.Second || def.INI["upload_max_filesize"] != "2M" || def.INI["memory_limit"] != "256M" || len(def.INI) != 2 || len(def.AdminINI) != 0 {
		t.Errorf("the default fastcgi route's settings: %+v", def)
	}
	if e := cfg.PHPSettings(1); len(e.INI) != 1 || e.INI["max_input_vars"] != "5000" {
		t.Errorf("the embedded rule's settings: %+v", e)
	}
	if e := cfg.PHPSettings(2); len(e.INI) != 0 || len(e.AdminINI) != 0 {
		t.Errorf("a plain embedded rule's settings: %+v", e)
	}
}

func TestAdmin(t *testing.T) {
	cfg, errs := parse(t, staticOnly)
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.Admin.Listen != "" || cfg.Admin.ShutdownDelay.Duration != 0 {
		t.Errorf("admin defaults: %+v, want no listener and no delay", cfg.Admin)
	}
	cfg, errs = parse(t, staticOnly+"[admin]\nlisten = \"127.0.0.1:9090\"\nshutdown_delay = \"5s\"\n")
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.Admin.Listen != "127.0.0.1:9090" || cfg.Admin.ShutdownDelay.Duration != 5*time.Second {
		t.Errorf("admin: %+v", cfg.Admin)
	}
	_, errs = parse(t, staticOnly+"[admin]\nlisten = \"9090\"\n")
	wantError(t, errs, 7, "admin.listen", "not a host:port")
	_, errs = parse(t, staticOnly+"[admin]\nlisten = \"127.0.0.1:99999\"\n")
	wantError(t, errs, 7, "admin.listen", "port")
	_, errs = parse(t, "[server]\nlisten = \"127.0.0.1:8080\"\n"+staticOnly+"[admin]\nlisten = \"127.0.0.1:8080\"\n")
	wantError(t, errs, 9, "admin.listen", "public listener")
	if _, errs = parse(t, "[server]\nlisten = \"127.0.0.1:0\"\n"+staticOnly+"[admin]\nlisten = \"127.0.0.1:0\"\n"); errs != nil {
		t.Errorf("port 0 twice (two ports the system picks): %v", errs)
	}
	_, errs = parse(t, staticOnly+"[admin]\nshutdown_delay = \"5s\"\n")
	wantError(t, errs, 7, "admin.shutdown_delay", "admin.listen is empty")
	if cfg.Admin.PProf {
		t.Error("admin.pprof is on by default")
	}
	_, errs = parse(t, staticOnly+"[admin]\npprof = true\n")
	wantError(t, errs, 7, "admin.pprof", "admin.listen is empty")
}

func TestEdgeChecks(t *testing.T) {
	_, errs := parse(t, `
[server]
allowed_hosts = ["example.com:80"]
trusted_proxies = ["10.0.0.300"]
headers = { "Content-Length" = "1" }
[server.compression]
algorithms = ["zstd", "lz4"]
[server.tls]
listen = ":8443"
hsts = "1 year"
http3 = true
`)
	wantError(t, errs, 3, "server.allowed_hosts[0]", "not a host name")
	wantError(t, errs, 4, "server.trusted_proxies", "10.0.0.300")
	wantError(t, errs, 5, "server.headers", "Content-Length")
	wantError(t, errs, 6, "server.compression", "lz4")
	wantError(t, errs, 8, "server.tls", "neither cert_file and key_file nor domains")
	wantError(t, errs, 10, "server.tls.hsts", "max-age=")
}

func TestWorkerCount(t *testing.T) {
	for _, c := range []struct {
		workers, pool int
		backend       string
		want          int
	}{
		{0, 8, BackendEmbedded, 2},
		{0, 1, BackendEmbedded, 2},
		{0, 8, BackendFastCGI, 1},
		{0, 8, BackendStatic, 1},
		{3, 8, BackendStatic, 3},
	} {
		cfg := Default()
		cfg.Server.Workers, cfg.PHP.WorkerPoolSize, cfg.Backend.DefaultBackend = c.workers, c.pool, c.backend
		if got := cfg.WorkerCount(); got != c.want {
			t.Errorf("workers=%d pool=%d %s: %d, want %d", c.workers, c.pool, c.backend, got, c.want)
		}
	}
}
