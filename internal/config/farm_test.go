package config

import (
	"slices"
	"strings"
	"testing"
)

func TestFPMFarmConfig(t *testing.T) {
	cfg, errs := parse(t, `
[php]
document_root = "site"
fpm_socket = ["127.0.0.1:9000", "run/b.sock"]
[php.fpm.admin]
fpm_socket = "127.0.0.1:9002"
balance = "round_robin"
[backend]
default_backend = "fastcgi"
[backend.connection_pool]
balance = "client_hash"
health_check_path = "/ping"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
fpm = "admin"
`)
	if errs != nil {
		t.Fatal(errs)
	}
	if len(cfg.PHP.FPMSocket) != 2 || cfg.PHP.FPMSocket[0] != "127.0.0.1:9000" || !strings.HasSuffix(cfg.PHP.FPMSocket[1], "/run/b.sock") || !strings.HasPrefix(cfg.PHP.FPMSocket[1], "/") {
		t.Errorf("fpm_socket = %q", cfg.PHP.FPMSocket)
	}
	if p := cfg.PHP.FPM["admin"]; !slices.Equal(p.FPMSocket, Addresses{"127.0.0.1:9002"}) || p.Balance != BalanceRoundRobin {
		t.Errorf("php.fpm.admin = %+v", p)
	}
	cp := cfg.Backend.ConnectionPool
	if cp.Balance != BalanceClientHash || cp.HealthCheckPath != "/ping" || cp.HealthCheckInterval.Seconds() != 5 {
		t.Errorf("connection_pool = %+v", cp)
	}
	if cfg.Backend.RoutingRules[0].FPM != "admin" {
		t.Error("rule fpm not read")
	}

	_, errs = parse(t, `
[php]
document_root = "site"
fpm_socket = ["127.0.0.1:9000", "localhost"]
[php.fpm.admin]
fpm_socket = "127.0.0.1:9000"
[backend]
default_backend = "fastcgi"
[backend.connection_pool]
balance = "least_con"
health_check_path = "ping"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
fpm = "admim"
[[backend.routing_rules]]
pattern = { type = "prefix", value = "/s/" }
backend = "static"
fpm = "admin"
`)
	wantError(t, errs, 4, "php.fpm_socket[1]", "neither host:port")
	wantError(t, errs, 6, "php.fpm.admin.fpm_socket", "already in php.fpm_socket")
	wantError(t, errs, 10, "backend.connection_pool.balance", `did you mean "least_conn"`)
	wantError(t, errs, 11, "backend.connection_pool.health_check_path", "must be a path")
	wantError(t, errs, 15, "backend.routing_rules[0].fpm", `no FPM pool named "admim"`)
	wantError(t, errs, 19, "backend.routing_rules[1].fpm", "fastcgi rules only")

	_, errs = parse(t, "[php]\nfpm_socket = 9000\n")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "fpm_socket: wrong type") {
		t.Errorf("fpm_socket = 9000: %v", errs)
	}
}
