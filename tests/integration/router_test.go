package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hybridStatic is the spec's SaaS recipe (/assets/ 100, /api/ 90,
// /admin/ 80, rest default) with every backend "static" (embedded and
// fastcgi are not built yet), plus overlapping rules that only priority
// order can separate.
const hybridStatic = `
[server.access_log]
output = "access.log"
format = "text"

[backend]
default_backend = "static"
enable_hybrid = true

[backend.static_files]
root = "root"
index_files = ["index.html"]

[[backend.routing_rules]]  # 0
pattern = { type = "prefix", value = "/api/" }
backend = "static"
priority = 90

[[backend.routing_rules]]  # 1
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100

[[backend.routing_rules]]  # 2
pattern = { type = "prefix", value = "/admin/" }
backend = "static"
priority = 80

[[backend.routing_rules]]  # 3: beats /api/ and /admin/, loses to /assets/
pattern = { type = "suffix", value = ".png" }
backend = "static"
priority = 95

[[backend.routing_rules]]  # 4
pattern = { type = "exact", value = "/status" }
backend = "static"
priority = 50

[[backend.routing_rules]]  # 5
pattern = { type = "regex", value = "^/user/[0-9]+$" }
backend = "static"
priority = 60

[[backend.routing_rules]]  # 6: same priority as 0, later: never wins
pattern = { type = "prefix", value = "/api/" }
backend = "static"
priority = 90

[[backend.routing_rules]]  # 7
pattern = { type = "prefix", value = "/static/" }
backend = "static"
priority = 10
`

func hybridFiles() map[string]string {
	return map[string]string{
		"root/index.html":      "INDEX",
		"root/static/a.css":    "STATIC-A-CSS",
		"root/assets/logo.png": "ASSET-PNG",
		"root/api/x":           "API-X",
		"root/admin/x":         "ADMIN-X",
		"root/status":          "STATUS",
		"root/user/123":        "USER-123",
	}
}

func TestRoutingPriority(t *testing.T) {
	t.Parallel()
	s := startServer(t, hybridStatic, hybridFiles())
	cases := []struct {
		target string // sent verbatim
		rule   string // expected rule= in the access log
	}{
		{"/assets/logo.png", "1"}, // prefix 100 beats suffix 95
		{"/api/logo.png", "3"},    // suffix 95 beats prefix 90
		{"/admin/logo.png", "3"},  // suffix 95 beats prefix 80
		{"/api/x", "0"},           // first of two equal priorities
		{"/api/", "0"},
		{"/admin/x", "2"},
		{"/status", "4"},
		{"/status/", "default"}, // exact: no trailing slash variant
		{"/api/status", "0"},
		{"/user/123", "5"},
		{"/user/abc", "default"},
		{"/user/123/profile", "default"},
		{"/users/api", "default"},
		{"/static/a.css", "7"},
		{"/%73tatic/a.css", "7"},           // decoded before matching
		{"/static/../admin/x", "2"},        // cleaned before matching
		{"/assets/../api/x", "0"},          // cleaned before matching
		{"/api/x?q=/assets/", "0"},         // the query is not matched
		{"/api//x", "0"},                   // repeated slashes collapsed
		{"/other", "default"},              // SPA fallback
		{"/%61ssets/logo.png", "1"},        // decoded
		{"/static/%2e%2e/admin/x", "2"},    // decoded, then cleaned
		{"/nothing/../status", "4"},        // cleaned to an exact match
		{"/%2fapi/x", "0"},                 // encoded slash decoded, collapsed
		{"/ASSETS/logo.png", "3"},          // prefixes are case-sensitive
		{"/static/a.css/", "7"},            // a trailing slash is kept
		{"/user/123?x=1", "5"},             // regex on the path only
		{"/user/123%2fprofile", "default"}, // %2f is a slash once decoded
	}
	for i, c := range cases {
		id := fmt.Sprintf("route-%d", i)
		resp, body := rawGet(t, s.Addr, c.target, "X-Request-Id: "+id)
		if resp.Header.Get("X-Request-Id") != id {
			t.Errorf("%s: X-Request-Id %q, want %q echoed", c.target, resp.Header.Get("X-Request-Id"), id)
		}
		_ = body
	}
	// Same answer for the encoded and plain forms.
	_, plain := rawGet(t, s.Addr, "/static/a.css")
	_, enc := rawGet(t, s.Addr, "/%73tatic/a.css")
	if string(plain) != "STATIC-A-CSS" || string(enc) != string(plain) {
		t.Errorf("/%%73tatic/a.css served %q, /static/a.css %q", enc, plain)
	}

	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	log, err := os.ReadFile(filepath.Join(s.Dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for line := range strings.SplitSeq(string(log), "\n") {
		if m := regexp.MustCompile(` id=(\S+) `).FindStringSubmatch(line); m != nil {
			byID[m[1]] = line
		}
	}
	for i, c := range cases {
		line, ok := byID[fmt.Sprintf("route-%d", i)]
		if !ok {
			t.Errorf("%s: no access log line", c.target)
			continue
		}
		f := parseLogfmt(t, line)
		if f["rule"] != c.rule || f["backend"] != "static" || f["uri"] != c.target {
			t.Errorf("%s: logged uri=%q backend=%q rule=%q, want the target, static, rule=%s\n%s",
				c.target, f["uri"], f["backend"], f["rule"], c.rule, line)
		}
	}
}

// TestAccessLog checks the fields of both access log formats.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	files := map[string]string{"root/index.html": "INDEX", "root/assets/a.css": "0123456789"}
	const rules = `
[backend]
default_backend = "static"

[backend.static_files]
root = "root"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/assets/" }
backend = "static"
priority = 100
`
	t.Run("text", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, rules, files) // default output: stdout, text
		rawGet(t, s.Addr, "/assets/a.css?v=1", "X-Request-Id: text-1")
		rawRequest(t, s.Addr, "HEAD", "/assets/a.css", "X-Request-Id: text-2")
		rawGet(t, s.Addr, "/assets/nope.css", "X-Request-Id: text-3")
		rawGet(t, s.Addr, "/spa/route", "X-Request-Id: text-4")
		// Poll: the log is flushed every second.
		var lines map[string]string
		waitFor(t, 10*time.Second, "4 access log lines on stdout", func() bool {
			lines = map[string]string{}
			for line := range strings.SplitSeq(s.Stdout(), "\n") {
				if m := regexp.MustCompile(` id=(text-\d) `).FindStringSubmatch(line); m != nil {
					lines[m[1]] = line
				}
			}
			return len(lines) == 4
		})
		for id, want := range map[string]map[string]string{
			"text-1": {"method": "GET", "uri": "/assets/a.css?v=1", "status": "200", "bytes": "10", "backend": "static", "rule": "0"},
			"text-2": {"method": "HEAD", "uri": "/assets/a.css", "status": "200", "bytes": "0", "backend": "static", "rule": "0"},
			"text-3": {"method": "GET", "uri": "/assets/nope.css", "status": "404", "backend": "static", "rule": "0"},
			"text-4": {"method": "GET", "uri": "/spa/route", "status": "200", "bytes": "5", "backend": "static", "rule": "default"},
		} {
			fields := parseLogfmt(t, lines[id])
			for k, v := range want {
				if fields[k] != v {
					t.Errorf("access log line %s: %s=%q, want %q\n%s", id, k, fields[k], v, lines[id])
				}
			}
		}
	})

	t.Run("reopen on SIGUSR1", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "[server.access_log]\noutput = \"access.log\"\n"+rules, files)
		live, rotated := filepath.Join(s.Dir, "access.log"), filepath.Join(s.Dir, "access.log.1")
		rawGet(t, s.Addr, "/before", "X-Request-Id: before-rotation")
		if err := os.Rename(live, rotated); err != nil {
			t.Fatal(err)
		}
		// nginx's signal for logrotate: the workers reopen their files,
		// nothing else changes.
		s.cmd.Process.Signal(syscall.SIGUSR1)
		waitFor(t, 10*time.Second, "the reopen log line", func() bool { return strings.Contains(s.Stderr(), "logs reopened") })
		rawGet(t, s.Addr, "/after", "X-Request-Id: after-rotation")
		if code := s.Stop(t); code != 0 {
			t.Errorf("exit code %d", code)
		}
		old, _ := os.ReadFile(rotated)
		cur, err := os.ReadFile(live)
		if err != nil {
			t.Fatalf("no new access log after SIGUSR1: %v", err)
		}
		if !strings.Contains(string(old), "id=before-rotation") || strings.Contains(string(old), "id=after-rotation") {
			t.Errorf("rotated log:\n%s", old)
		}
		if !strings.Contains(string(cur), "id=after-rotation") || strings.Contains(string(cur), "id=before-rotation") {
			t.Errorf("reopened log:\n%s", cur)
		}
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "[server.access_log]\noutput = \"stdout\"\nformat = \"json\"\n"+rules, files)
		rawGet(t, s.Addr, "/assets/a.css?v=\"q\"", "X-Request-Id: json-1")
		rawGet(t, s.Addr, "/elsewhere", "X-Request-Id: json-2")
		if code := s.Stop(t); code != 0 {
			t.Errorf("exit code %d", code)
		}
		got := map[string]map[string]any{}
		for line := range strings.SplitSeq(strings.TrimSpace(s.Stdout()), "\n") {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Errorf("access log line is not JSON: %v\n%s", err, line)
				continue
			}
			id, _ := e["id"].(string)
			got[id] = e
		}
		check := func(id string, want map[string]any) {
			e, ok := got[id]
			if !ok {
				t.Errorf("no JSON access log line with id %s:\n%s", id, s.Stdout())
				return
			}
			for k, v := range want {
				if fmt.Sprint(e[k]) != fmt.Sprint(v) {
					t.Errorf("%s: %s = %v, want %v (%v)", id, k, e[k], v, e)
				}
			}
			for _, k := range []string{"time", "remote", "proto", "duration_ms"} {
				if _, ok := e[k]; !ok {
					t.Errorf("%s: no %q field: %v", id, k, e)
				}
			}
		}
		check("json-1", map[string]any{"method": "GET", "uri": `/assets/a.css?v="q"`, "status": 200, "bytes": 10, "backend": "static", "rule": 0})
		check("json-2", map[string]any{"method": "GET", "uri": "/elsewhere", "status": 200, "bytes": 5, "backend": "static", "rule": "default"})
	})
}

// parseLogfmt splits a text access log line (a timestamp, then key=value
// pairs, values bare or Go-quoted) into its fields.
func parseLogfmt(t *testing.T, line string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	_, rest, _ := strings.Cut(line, " ")
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			t.Errorf("not logfmt at %q in %q", rest, line)
			return fields
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				t.Errorf("bad quoted value at %q in %q", v, line)
				return fields
			}
			fields[k], _ = strconv.Unquote(q)
			rest = strings.TrimPrefix(v[len(q):], " ")
		} else {
			val, after, _ := strings.Cut(v, " ")
			fields[k], rest = val, after
		}
	}
	return fields
}
