package integration

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const goodConfig = `[server]
listen = "127.0.0.1:0"

[backend]
default_backend = "static"

[backend.static_files]
root = "root"
index_files = ["index.html"]

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/" }
backend = "static"
priority = 90

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/static/" }
backend = "static"
priority = 100
`

// writeConfig writes a config named name into a new dir with a "root"
// directory beside it, and returns the dir.
func writeConfig(t *testing.T, name, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"root/index.html": "x", name: cfg})
	return dir
}

func TestCLIConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  string
		want []*regexp.Regexp
	}{
		{
			"misspelled key",
			"[server]\nlisten = \"127.0.0.1:0\"\nlog_levle = \"debug\"\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:3\b.*log_levle`), regexp.MustCompile(`log_level`)},
		},
		{
			"misspelled key in a rule",
			goodConfig + "\n[[backend.routing_rules]]\npattern = { type = \"prefix\", value = \"/x/\" }\nbackend = \"static\"\npriorty = 5\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:24\b.*priorty`)},
		},
		{
			"wrong type",
			"[php]\nworker_pool_size = \"eight\"\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:2\b.*worker_pool_size`), regexp.MustCompile(`integer`)},
		},
		{
			"wrong type size",
			"[server]\nmax_body_size = \"lots\"\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:2\b.*max_body_size`)},
		},
		{
			"unknown backend",
			strings.Replace(goodConfig, `backend = "static"
priority = 90`, `backend = "nginx"
priority = 90`, 1),
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:13\b.*routing_rules\[0\]\.backend.*nginx`)},
		},
		{
			"unknown default backend",
			strings.Replace(goodConfig, `default_backend = "static"`, `default_backend = "statc"`, 1),
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:5\b.*default_backend.*statc.*did you mean "static"`)},
		},
		{
			"regex does not compile",
			goodConfig + "\n[[backend.routing_rules]]\npattern = { type = \"regex\", value = \"^/user/[0-9+$\" }\nbackend = \"static\"\npriority = 5\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:22\b.*routing_rules\[2\].*regex`)},
		},
		{
			"missing static root",
			strings.Replace(goodConfig, `root = "root"`, `root = "no-such-dir"`, 1),
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:8\b.*static_files\.root.*no-such-dir`)},
		},
		{
			"rule to embedded, libphp missing",
			strings.Replace(goodConfig, `backend = "static"
priority = 90`, `backend = "embedded"
priority = 90`, 1) + "\n[php]\ndocument_root = \"root\"\nlibphp_path = \"/nonexistent/libphp.so\"\n",
			[]*regexp.Regexp{regexp.MustCompile(`embedded`), regexp.MustCompile(`/nonexistent/libphp\.so.*no such file`)},
		},
		{
			"not TOML",
			"[server\nlisten = 1\n",
			[]*regexp.Regexp{regexp.MustCompile(`bad\.toml:1\b`)},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := writeConfig(t, "bad.toml", c.cfg)
			stdout, stderr, code := runCLI(t, dir, "check", "-c", "bad.toml")
			if code != 1 {
				t.Errorf("fe-php check: exit code %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, re := range c.want {
				if !re.MatchString(stderr) {
					t.Errorf("fe-php check: stderr does not match %s:\n%s", re, stderr)
				}
			}
			if strings.Contains(stdout, "configuration OK") {
				t.Errorf("fe-php check said OK: %s", stdout)
			}
		})
	}
}

// TestCLIRunRefusesBadConfig: fe-php run with a config error exits
// non-zero before listening.
func TestCLIRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for name, cfg := range map[string]string{
		"misspelled":              "[server]\nlisten = \"" + addr + "\"\nlog_levle = \"debug\"\n",
		"embedded without libphp": strings.Replace(goodConfig, "127.0.0.1:0", addr, 1) + "\n[[backend.routing_rules]]\npattern = { type = \"prefix\", value = \"/php/\" }\nbackend = \"embedded\"\npriority = 1\n[php]\ndocument_root = \"root\"\nlibphp_path = \"/nonexistent/libphp.so\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeConfig(t, "bad.toml", cfg)
			_, stderr, code := runCLI(t, dir, "run", "-c", "bad.toml")
			if code == 0 {
				t.Errorf("fe-php run: exit code 0 with a bad config")
			}
			if strings.Contains(stderr, "msg=serving") {
				t.Errorf("fe-php run served with a bad config:\n%s", stderr)
			}
			if !strings.Contains(stderr, "not starting") {
				t.Errorf("fe-php run: stderr does not say it is not starting:\n%s", stderr)
			}
		})
	}
}

func TestCLIGood(t *testing.T) {
	t.Parallel()
	dir := writeConfig(t, "good.toml", goodConfig)

	stdout, stderr, code := runCLI(t, dir, "check", "-c", "good.toml")
	if code != 0 || !strings.Contains(stdout, "configuration OK") {
		t.Errorf("check good.toml: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	stdout, stderr, code = runCLI(t, dir, "routes", "-c", "good.toml", "/api/x", "/static/a.css", "/%73tatic/b.css", "/other")
	if code != 0 {
		t.Fatalf("routes: exit %d\n%s", code, stderr)
	}
	wantRoute(t, stdout, "/api/x", `routing_rules[0] prefix "/api/"`, "90", "static")
	wantRoute(t, stdout, "/static/a.css", `routing_rules[1] prefix "/static/"`, "100", "static")
	wantRoute(t, stdout, "/%73tatic/b.css", `routing_rules[1] prefix "/static/"`, "100", "static")
	wantRoute(t, stdout, "/other", "default_backend", "-", "static")

	// routes only needs a valid config: it shows backends not built yet.
	hybrid := `[backend]
default_backend = "embedded"

[backend.static_files]
root = "root"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/api/" }
backend = "embedded"
priority = 90

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/admin/" }
backend = "fastcgi"
priority = 80
`
	if err := os.WriteFile(filepath.Join(dir, "hybrid.toml"), []byte(hybrid), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, dir, "routes", "-c", "hybrid.toml", "/assets/a.png", "/api/users", "/admin/x", "/")
	if code != 0 {
		t.Fatalf("routes hybrid: exit %d\n%s", code, stderr)
	}
	wantRoute(t, stdout, "/assets/a.png", `routing_rules[0] prefix "/assets/"`, "100", "static")
	wantRoute(t, stdout, "/api/users", `routing_rules[1] prefix "/api/"`, "90", "embedded")
	wantRoute(t, stdout, "/admin/x", `routing_rules[2] prefix "/admin/"`, "80", "fastcgi")
	wantRoute(t, stdout, "/", "default_backend", "-", "embedded")

	stdout, _, code = runCLI(t, dir, "version")
	if code != 0 || !strings.HasPrefix(stdout, "fe-php") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
}

// wantRoute finds the routes output line for path and checks its rule,
// priority and backend.
func wantRoute(t *testing.T, out, path, rule, prio, backend string) {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != path {
			continue
		}
		if !strings.Contains(line, rule) || len(f) < 3 || f[len(f)-1] != backend || f[len(f)-2] != prio {
			t.Errorf("routes %s: %q, want rule %s priority %s backend %s", path, line, rule, prio, backend)
		}
		return
	}
	t.Errorf("routes: no line for %s in:\n%s", path, out)
}

// A relative -c works from any directory: the config's relative paths
// (a document root, a static root filled from it, an FPM socket) follow
// the config file. And check does not create the access log file: run
// as root, it would leave a file the service's user cannot open.
func TestCLICheckRelativeConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"site/fe-php.toml": "[php]\ndocument_root = \"public\"\nfpm_socket = \"run/php-fpm.sock\"\n" +
			"[server.access_log]\noutput = \"logs/access.log\"\n" +
			"[backend]\ndefault_backend = \"static\"\n" +
			"[[backend.routing_rules]]\npattern = { type = \"prefix\", value = \"/admin/\" }\nbackend = \"fastcgi\"\npriority = 1\n",
		"site/public/index.html": "hi",
		"site/logs/":             "",
	})
	for _, c := range []struct{ cwd, config string }{
		{dir, "site/fe-php.toml"},
		{filepath.Join(dir, "site"), "fe-php.toml"},
		{filepath.Join(dir, "site", "public"), "../fe-php.toml"},
	} {
		stdout, stderr, code := runCLI(t, c.cwd, "check", "-c", c.config)
		if code != 0 || !strings.Contains(stdout, "configuration OK") {
			t.Errorf("check -c %s in %s: exit %d\n%s%s", c.config, c.cwd, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "site", "logs", "access.log")); !os.IsNotExist(err) {
		t.Errorf("check created the access log (stat: %v)", err)
	}
	// A log in a directory that does not exist is an error check reports.
	writeFiles(t, dir, map[string]string{"bad.toml": "[server.access_log]\noutput = \"nowhere/access.log\"\n[backend]\ndefault_backend = \"static\"\n[backend.static_files]\nroot = \"site/public\"\n"})
	_, stderr, code := runCLI(t, dir, "check", "-c", "bad.toml")
	if code != 1 || !strings.Contains(stderr, "server.access_log.output") {
		t.Errorf("check of a log in a missing directory: exit %d, %s", code, stderr)
	}
}
