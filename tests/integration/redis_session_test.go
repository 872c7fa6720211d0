//go:build fephp_bridge

package integration

// PHP sessions in Redis, shared by both PHP backends (docs/recipes/redis-sessions.md).
//
// The test starts Debian's redis-server on 127.0.0.1 (a free port, no
// persistence, its own temporary directory) and one fe-php with hybrid
// routing: /emb/ on the embedded backend, /fpm/ on the fastcgi backend to
// a php-fpm8.2 it starts (fpmtest, with Debian's conf.d: php8.2-redis).
// Both PHPs keep their sessions with phpredis's handler in that Redis:
// embedded PHP through fe-php's [php.ini] table, PHP-FPM through its pool
// (php_admin_value). The scripts are testdata/php-redis/, copied under
// both prefixes.
//
// What a user sees: a session one backend starts (its PHPSESSID cookie)
// is the other's session too, both ways; a counter bumped by each in turn
// counts every request; the data is in Redis under PHPREDIS_SESSION:<id>,
// read with a few lines of RESP below; a session_regenerate_id or a
// session_destroy on one backend is what the other sees next.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil"
	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// redisServerBinary is Debian's redis-server (package redis-server).
const redisServerBinary = "/usr/bin/redis-server"

// redisSessionPrefix is the key prefix of phpredis's session handler (its
// default; the save_path's "prefix" parameter changes it).
const redisSessionPrefix = "PHPREDIS_SESSION:"

// redisSessionAnswer is what the testdata/php-redis scripts answer.
type redisSessionAnswer struct {
	SAPI    string         `json:"sapi"`
	ID      string         `json:"id"`
	Old     string         `json:"old"` // regenerate.php: the id before
	OK      bool           `json:"ok"`  // regenerate.php, destroy.php: PHP's result
	Session map[string]any `json:"session"`
}

// redisSessionInfo is testdata/php-redis/info.php's answer.
type redisSessionInfo struct {
	SAPI             string `json:"sapi"`
	RedisLoaded      bool   `json:"redis_loaded"`
	RedisVersion     any    `json:"redis_version"` // false without the extension
	SaveHandler      string `json:"save_handler"`
	SavePath         string `json:"save_path"`
	SerializeHandler string `json:"serialize_handler"`
	Name             string `json:"name"`
	SIDLength        string `json:"sid_length"`
}

func TestRedisSessions(t *testing.T) {
	t.Parallel()
	redis := startRedisTestServer(t)
	savePath := "tcp://" + redis.Addr

	site := startRedisSessionSite(t, fmt.Sprintf(`"session.save_handler" = "redis"
"session.save_path" = %q
`, savePath), map[string]string{
		// The pool's php_admin_value[session.save_handler] = redis, ...
		"session.save_handler": "redis",
		"session.save_path":    savePath,
	})
	s, f := site.srv, site.fpm

	// Both PHPs: phpredis loaded, sessions in this Redis, one format.
	emb, fpm := site.embInfo, site.fpmInfo
	t.Logf("embedded: SAPI %s, phpredis %v; fpm: phpredis %v", emb.SAPI, emb.RedisVersion, fpm.RedisVersion)
	for _, in := range []struct {
		name string
		info redisSessionInfo
	}{{"embedded", emb}, {"fpm", fpm}} {
		if !in.info.RedisLoaded {
			t.Errorf("%s: extension_loaded('redis') is false (fpm: php8.2-redis; embedded: the build's conf.d/20-redis.ini)", in.name)
		}
		if in.info.SaveHandler != "redis" || in.info.SavePath != savePath {
			t.Errorf("%s: session.save_handler %q, session.save_path %q; want redis, %q", in.name, in.info.SaveHandler, in.info.SavePath, savePath)
		}
	}
	if emb.SerializeHandler == "" || emb.SerializeHandler != fpm.SerializeHandler {
		t.Errorf("session.serialize_handler: embedded %q, fpm %q; want the same (each side must decode what the other wrote)", emb.SerializeHandler, fpm.SerializeHandler)
	}
	if emb.Name != "PHPSESSID" || fpm.Name != "PHPSESSID" {
		t.Errorf("session.name: embedded %q, fpm %q; want PHPSESSID on both", emb.Name, fpm.Name)
	}
	if t.Failed() {
		t.FailNow()
	}

	token := "tok-" + randomHex(t, 8)
	var sid string // the session started on embedded
	t.Run("a session started on embedded is read by fpm", func(t *testing.T) {
		a, cookie := site.call(t, "emb", "/set.php?v="+token, "")
		if cookie == nil || cookie.Value == "" || cookie.Value != a.ID {
			t.Fatalf("a new session on embedded: Set-Cookie %v, session id %q; want PHPSESSID=<the id>", cookie, a.ID)
		}
		sid = a.ID
		// In Redis, in the serialize_handler's format, with an expiry.
		stored, ok := redis.get(t, redisSessionPrefix+sid)
		if !ok {
			t.Fatalf("no key %s%s in Redis after the session was written; keys: %q", redisSessionPrefix, sid, redis.keys(t))
		}
		if want := fmt.Sprintf(`value|s:%d:"%s";`, len(token), token); !strings.Contains(stored, want) {
			t.Errorf("Redis %s%s = %q, want it to hold %q", redisSessionPrefix, sid, stored, want)
		}
		if ttl := redis.ttl(t, redisSessionPrefix+sid); ttl <= 0 {
			t.Errorf("Redis TTL of the session key is %d, want an expiry (session.gc_maxlifetime)", ttl)
		}

		b, cookie := site.call(t, "fpm", "/peek.php", sid)
		if b.ID != sid || b.Session["value"] != token {
			t.Errorf("fpm with PHPSESSID=%s: session %q %v, want the value %q embedded stored", sid, b.ID, b.Session, token)
		}
		if cookie != nil {
			t.Errorf("fpm resuming the session sent Set-Cookie %v, want none", cookie)
		}
	})
	if sid == "" {
		t.FailNow()
	}

	t.Run("a session started on fpm is read by embedded", func(t *testing.T) {
		token2 := "tok-" + randomHex(t, 8)
		a, cookie := site.call(t, "fpm", "/set.php?v="+token2, "")
		if cookie == nil || cookie.Value == "" || cookie.Value != a.ID {
			t.Fatalf("a new session on fpm: Set-Cookie %v, session id %q; want PHPSESSID=<the id>", cookie, a.ID)
		}
		if a.ID == sid {
			t.Fatalf("fpm started session %s, the same id as embedded's", a.ID)
		}
		if _, ok := redis.get(t, redisSessionPrefix+a.ID); !ok {
			t.Errorf("no key %s%s in Redis after fpm wrote the session", redisSessionPrefix, a.ID)
		}
		b, cookie := site.call(t, "emb", "/peek.php", a.ID)
		if b.ID != a.ID || b.Session["value"] != token2 {
			t.Errorf("embedded with PHPSESSID=%s: session %q %v, want the value %q fpm stored", a.ID, b.ID, b.Session, token2)
		}
		if cookie != nil {
			t.Errorf("embedded resuming the session sent Set-Cookie %v, want none", cookie)
		}
	})

	const rounds = 6
	t.Run("a counter bumped by each backend in turn", func(t *testing.T) {
		var trail []any
		for i := 1; i <= rounds; i++ {
			backend := []string{"emb", "fpm"}[(i-1)%2]
			a, cookie := site.call(t, backend, "/counter.php", sid)
			trail = append(trail, site.sapi[backend])
			if cookie != nil {
				t.Errorf("round %d on %s sent Set-Cookie %v: the session was not resumed", i, backend, cookie)
			}
			if a.ID != sid || a.Session["n"] != float64(i) {
				t.Fatalf("round %d on %s: session %q n=%v, want %s n=%d (the other backend's count plus one)", i, backend, a.ID, a.Session["n"], sid, i)
			}
			if got, _ := a.Session["trail"].([]any); !slices.Equal(got, trail) {
				t.Errorf("round %d on %s: trail %v, want %v", i, backend, got, trail)
			}
			if a.Session["value"] != token {
				t.Errorf("round %d on %s: value %v, want %q still there", i, backend, a.Session["value"], token)
			}
		}
		stored, _ := redis.get(t, redisSessionPrefix+sid)
		if want := fmt.Sprintf("n|i:%d;", rounds); !strings.Contains(stored, want) {
			t.Errorf("Redis %s%s = %q, want it to hold %q", redisSessionPrefix, sid, stored, want)
		}
	})

	// session_regenerate_id(true) on one backend: the other finds the data
	// under the new id only.
	regenerate := func(t *testing.T, on, other, id string) string {
		t.Helper()
		before, _ := site.call(t, other, "/peek.php", id)
		a, cookie := site.call(t, on, "/regenerate.php", id)
		if !a.OK || a.Old != id || a.ID == "" || a.ID == id {
			t.Fatalf("session_regenerate_id(true) on %s: ok=%v, id %q -> %q; want a new id for %s", on, a.OK, a.Old, a.ID, id)
		}
		if cookie == nil || cookie.Value != a.ID {
			t.Errorf("session_regenerate_id on %s: Set-Cookie %v, want PHPSESSID=%s", on, cookie, a.ID)
		}
		if redis.exists(t, redisSessionPrefix+id) {
			t.Errorf("Redis still has %s%s after session_regenerate_id(true) on %s", redisSessionPrefix, id, on)
		}
		if _, ok := redis.get(t, redisSessionPrefix+a.ID); !ok {
			t.Errorf("Redis has no %s%s after session_regenerate_id on %s", redisSessionPrefix, a.ID, on)
		}
		b, _ := site.call(t, other, "/peek.php", a.ID)
		if len(b.Session) == 0 || !sameJSON(b.Session, before.Session) {
			t.Errorf("%s with the new id %s: session %v, want the data it had under %s: %v", other, a.ID, b.Session, id, before.Session)
		}
		c, _ := site.call(t, other, "/peek.php", id)
		if len(c.Session) != 0 {
			t.Errorf("%s with the old id %s after session_regenerate_id(true) on %s: session %v, want it empty", other, id, on, c.Session)
		}
		return a.ID
	}
	t.Run("session_regenerate_id on fpm is seen by embedded", func(t *testing.T) {
		sid = regenerate(t, "fpm", "emb", sid)
	})
	t.Run("session_regenerate_id on embedded is seen by fpm", func(t *testing.T) {
		sid = regenerate(t, "emb", "fpm", sid)
	})

	// session_destroy on one backend: the other finds the session gone.
	destroy := func(t *testing.T, on, other, id string) {
		t.Helper()
		if before, _ := site.call(t, other, "/peek.php", id); len(before.Session) == 0 {
			t.Fatalf("%s sees no session %s before the logout", other, id)
		}
		a, cookie := site.call(t, on, "/destroy.php", id)
		if !a.OK || a.ID != id {
			t.Fatalf("session_destroy on %s for %s: ok=%v id %q", on, id, a.OK, a.ID)
		}
		if cookie == nil || (cookie.Value != "" && cookie.Value != "deleted") || cookie.Expires.After(time.Now()) {
			t.Errorf("logout on %s: Set-Cookie %v, want PHPSESSID cleared", on, cookie)
		}
		if redis.exists(t, redisSessionPrefix+id) {
			t.Errorf("Redis still has %s%s after session_destroy on %s", redisSessionPrefix, id, on)
		}
		b, _ := site.call(t, other, "/peek.php", id)
		if len(b.Session) != 0 {
			t.Errorf("%s with PHPSESSID=%s after session_destroy on %s: session %v, want it empty", other, id, on, b.Session)
		}
		if redis.exists(t, redisSessionPrefix+id) {
			t.Errorf("Redis has %s%s again after %s read the destroyed session", redisSessionPrefix, id, other)
		}
	}
	t.Run("session_destroy on embedded is seen by fpm", func(t *testing.T) {
		destroy(t, "emb", "fpm", sid)
	})
	t.Run("session_destroy on fpm is seen by embedded", func(t *testing.T) {
		a, _ := site.call(t, "emb", "/set.php?v="+token, "")
		destroy(t, "fpm", "emb", a.ID)
	})

	// Neither PHP logged an error or a warning (a session handler's
	// "Failed to read session data", a connection refused...).
	for _, line := range strings.Split(s.Stderr(), "\n") {
		if strings.Contains(line, " msg=php ") {
			t.Errorf("embedded PHP logged: %s", line)
		}
	}
	for _, line := range strings.Split(f.Log(), "\n") {
		if strings.Contains(line, "PHP ") {
			t.Errorf("php-fpm logged: %s", line)
		}
	}
}

// TestRedisSessionsSavePathParams: phpredis's save_path takes parameters
// (tcp://host:6379?auth=...&timeout=2.5&prefix=...). A php.ini value with
// "=", "&" or ";" must be quoted for PHP's ini parser: PHP-FPM refuses to
// start on php_admin_value[session.save_path] = tcp://...?timeout=2.5
// unquoted, so the pool has it in double quotes, as a user writes it. In
// fe-php.toml the value is a TOML string: the test wants embedded PHP to
// get it whole, with the [php.ini] settings after it, or else fe-php to
// refuse the configuration (fe-php check) naming the setting, as FPM
// does; never a part of it silently.
func TestRedisSessionsSavePathParams(t *testing.T) {
	t.Parallel()
	redis := startRedisTestServer(t)
	const prefix = "fephp_sess:"
	savePath := "tcp://" + redis.Addr + "?timeout=2.5&prefix=" + prefix
	// session.sid_length sorts after session.save_path.
	phpINI := fmt.Sprintf(`"session.save_handler" = "redis"
"session.save_path" = %q
"session.sid_length" = "48"
`, savePath)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "check.toml")
	if err := os.WriteFile(cfg, []byte("[php]\ndocument_root = "+strconv.Quote(dir)+"\n\n[php.ini]\n"+phpINI), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, dir, "check", "-c", cfg)
	if code != 0 {
		if !strings.Contains(stdout+stderr, "session.save_path") {
			t.Fatalf("fe-php check refused the config (exit %d) without naming session.save_path:\n%s%s", code, stdout, stderr)
		}
		t.Logf("fe-php check refuses the unquoted value, as FPM does:\n%s%s", stdout, stderr)
		return
	}

	site := startRedisSessionSite(t, phpINI, map[string]string{
		"session.save_handler": "redis",
		"session.save_path":    `"` + savePath + `"`, // quoted, as FPM's pool config needs it
	})
	if got := site.fpmInfo.SavePath; got != savePath {
		t.Fatalf("fpm: session.save_path %q, want %q", got, savePath)
	}
	emb := site.embInfo
	if emb.SavePath != savePath || emb.SIDLength != "48" {
		t.Fatalf("fe-php check accepts [php.ini] \"session.save_path\" = %q, but embedded PHP runs with "+
			"session.save_path %q and session.sid_length %q (want %q and \"48\"): fe-php writes the [php.ini] "+
			"values unquoted into PHP's ini text, so PHP's ini parser stops at the \"=\" (\"PHP:  syntax error, "+
			"unexpected '='\" on fe-php's stderr) and drops every [php.ini] key sorted after this one",
			savePath, emb.SavePath, emb.SIDLength, savePath)
	}
	a, cookie := site.call(t, "emb", "/set.php?v=params", "")
	if cookie == nil || len(a.ID) != 48 {
		t.Fatalf("embedded session: Set-Cookie %v, id %q; want a 48-character id", cookie, a.ID)
	}
	if _, ok := redis.get(t, prefix+a.ID); !ok {
		t.Errorf("no key %s%s in Redis: the save_path's prefix parameter was not applied; keys: %q", prefix, a.ID, redis.keys(t))
	}
	if b, _ := site.call(t, "fpm", "/peek.php", a.ID); b.Session["value"] != "params" {
		t.Errorf("fpm with PHPSESSID=%s: session %v, want the value embedded stored", a.ID, b.Session)
	}
}

// redisSessionSite is one fe-php serving testdata/php-redis under /emb/
// (the embedded backend) and /fpm/ (the fastcgi backend, to its own
// php-fpm).
type redisSessionSite struct {
	t       *testing.T
	srv     *Server
	fpm     *fpmtest.FPM
	embInfo redisSessionInfo  // /emb/info.php's answer
	fpmInfo redisSessionInfo  // /fpm/info.php's answer
	sapi    map[string]string // "emb", "fpm": the PHP_SAPI each prefix runs on
}

// startRedisSessionSite starts php-fpm with fpmINI as the pool's
// php_admin_value settings and fe-php with phpINI as the body of its
// [php.ini] table, both on one docroot holding testdata/php-redis under
// emb/ and fpm/, and checks that each prefix runs on its backend.
func startRedisSessionSite(t *testing.T, phpINI string, fpmINI map[string]string) *redisSessionSite {
	t.Helper()
	root := t.TempDir()
	scripts, err := filepath.Glob(filepath.Join("testdata", "php-redis", "*.php"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in testdata/php-redis: %v", err)
	}
	files := map[string]string{}
	for _, src := range scripts {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"emb", "fpm"} {
			files[dir+"/"+filepath.Base(src)] = string(data)
		}
	}
	writeFiles(t, root, files)

	h := &redisSessionSite{t: t}
	h.fpm = fpmtest.Start(t, fpmtest.Options{Children: 2, DocRoot: root, ExtraINI: fpmINI})
	h.srv = startServer(t, fmt.Sprintf(`[php]
document_root = %q
front_controller = ""
fpm_socket = %q
worker_pool_size = 2

[php.ini]
%s
[backend]
default_backend = "embedded"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/emb/" }
backend = "embedded"
priority = 100

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"
priority = 100
`, root, h.fpm.Address, phpINI), nil)

	h.embInfo, h.fpmInfo = h.info("/emb/info.php"), h.info("/fpm/info.php")
	if h.fpmInfo.SAPI != "fpm-fcgi" {
		t.Fatalf("/fpm/info.php ran on SAPI %q, want fpm-fcgi (the fastcgi backend)", h.fpmInfo.SAPI)
	}
	if h.embInfo.SAPI == "fpm-fcgi" || h.embInfo.SAPI == "" {
		t.Fatalf("/emb/info.php ran on SAPI %q, want the embedded backend's", h.embInfo.SAPI)
	}
	h.sapi = map[string]string{"emb": h.embInfo.SAPI, "fpm": h.fpmInfo.SAPI}
	return h
}

func (h *redisSessionSite) info(path string) redisSessionInfo {
	h.t.Helper()
	resp, body := get(h.t, h.srv, path)
	wantStatus(h.t, resp, body, http.StatusOK)
	var in redisSessionInfo
	if err := json.Unmarshal(body, &in); err != nil {
		h.t.Fatalf("GET %s: %v; body %q", path, err, trunc(body))
	}
	return in
}

// call GETs /<backend><script> ("emb" or "fpm") with the session cookie
// sid ("": none) and returns the script's answer and the PHPSESSID cookie
// the response set (nil: none). It checks that the PHP of the prefix
// answered.
func (h *redisSessionSite) call(t *testing.T, backend, script, sid string) (redisSessionAnswer, *http.Cookie) {
	t.Helper()
	path := "/" + backend + script
	var headers []string
	if sid != "" {
		headers = append(headers, "Cookie: PHPSESSID="+sid)
	}
	resp, body := get(t, h.srv, path, headers...)
	wantStatus(t, resp, body, http.StatusOK)
	var a redisSessionAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("GET %s: %v; body %q", path, err, trunc(body))
	}
	if want := h.sapi[backend]; a.SAPI != want {
		t.Fatalf("GET %s ran on SAPI %q, want %q", path, a.SAPI, want)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			if cookie != nil {
				t.Errorf("GET %s set PHPSESSID twice: %q", path, resp.Header.Values("Set-Cookie"))
			}
			cookie = c
		}
	}
	return a, cookie
}

// sameJSON reports whether a and b encode to the same JSON.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// redisTestServer is a redis-server started by a test.
type redisTestServer struct {
	Addr   string // 127.0.0.1:port
	cmd    *exec.Cmd
	out    *testutil.SyncBuffer
	exited chan struct{}
	guard  *orphanGuard
}

// startRedisTestServer starts Debian's redis-server on 127.0.0.1 and a free
// port, without persistence, in a temporary directory, and waits until it
// answers PING. It is stopped when the test ends.
func startRedisTestServer(t *testing.T) *redisTestServer {
	t.Helper()
	if _, err := os.Stat(redisServerBinary); err != nil {
		t.Fatalf("%s not found: install redis-server (scripts/deps.sh)", redisServerBinary)
	}
	dir := t.TempDir()
	// The port is free when picked, but another process may take it before
	// Redis binds it: then Redis exits, and another port is tried.
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		r := &redisTestServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: &testutil.SyncBuffer{}, exited: make(chan struct{})}
		r.cmd = exec.Command(redisServerBinary,
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--logfile", "")
		r.cmd.Dir = dir
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", redisServerBinary, err)
		}
		go func() {
			r.cmd.Wait()
			close(r.exited)
		}()
		r.guard = startOrphanGuard(fmt.Sprintf("kill -KILL -%d", r.cmd.Process.Pid))
		t.Cleanup(func() {
			r.stop()
			if t.Failed() {
				t.Logf("redis-server output:\n%s", tail(r.out.String(), 2000))
			}
		})
		exited := false
		waitFor(t, 15*time.Second, "redis-server to answer PING on "+r.Addr, func() bool {
			select {
			case <-r.exited:
				exited = true
				return true
			default:
			}
			reply, err := redisCommand(r.Addr, "PING")
			return err == nil && reply == "PONG"
		})
		if !exited {
			return r
		}
		if !strings.Contains(r.out.String(), "Address already in use") || attempt == 3 {
			t.Fatalf("redis-server exited at start-up (%v):\n%s", r.cmd.ProcessState, r.out.String())
		}
	}
}

// stop ends Redis: SIGTERM (it has nothing to save), SIGKILL to its process
// group after 10 s. It is safe to call twice.
func (r *redisTestServer) stop() {
	select {
	case <-r.exited:
	default:
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	}
	r.guard.stop()
}

func (r *redisTestServer) do(t *testing.T, args ...string) any {
	t.Helper()
	reply, err := redisCommand(r.Addr, args...)
	if err != nil {
		t.Fatalf("redis %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

// get returns the string value of key, and whether it exists.
func (r *redisTestServer) get(t *testing.T, key string) (string, bool) {
	t.Helper()
	switch v := r.do(t, "GET", key).(type) {
	case nil:
		return "", false
	case string:
		return v, true
	default:
		t.Fatalf("redis GET %s: unexpected reply %#v", key, v)
		return "", false
	}
}

func (r *redisTestServer) exists(t *testing.T, key string) bool {
	t.Helper()
	n, ok := r.do(t, "EXISTS", key).(int64)
	if !ok {
		t.Fatalf("redis EXISTS %s: not an integer reply", key)
	}
	return n == 1
}

// ttl is the key's time to live in seconds (-1: no expiry, -2: no key).
func (r *redisTestServer) ttl(t *testing.T, key string) int64 {
	t.Helper()
	n, ok := r.do(t, "TTL", key).(int64)
	if !ok {
		t.Fatalf("redis TTL %s: not an integer reply", key)
	}
	return n
}

func (r *redisTestServer) keys(t *testing.T) []any {
	t.Helper()
	list, _ := r.do(t, "KEYS", "*").([]any)
	return list
}

// redisError is an error reply of Redis ("-ERR ...").
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

// redisCommand sends one command to the Redis at addr on a new connection
// (RESP: an array of bulk strings) and returns its reply: a string for a
// simple or bulk string, an int64, nil for a null bulk string or array, a
// []any for an array; an error reply is a redisError.
func redisCommand(addr string, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(c))
}

func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("redis: malformed reply line %q", line)
	}
	kind, rest := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return rest, nil
	case '-':
		return nil, redisError(rest)
	case ':':
		return strconv.ParseInt(rest, 10, 64)
	case '$', '*':
		n, err := strconv.Atoi(rest)
		if err != nil {
			return nil, fmt.Errorf("redis: malformed length in %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		if kind == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			return string(buf[:n]), nil
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("redis: unknown reply type in %q", line)
}

// orphanGuard runs a shell command when this test process dies without
// its cleanup (a test timeout panics past t.Cleanup; ^C), so that a server
// a test started does not outlive it: a shell in its own process group
// blocks reading a pipe whose only writer is this process. stop ends it
// without running the command.
type orphanGuard struct {
	cmd *exec.Cmd
	w   *os.File
}

func startOrphanGuard(command string) *orphanGuard {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", "read -r _; "+command)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil
	}
	return &orphanGuard{cmd: cmd, w: w}
}

func (g *orphanGuard) stop() {
	if g == nil {
		return
	}
	g.cmd.Process.Kill()
	g.cmd.Wait()
	g.w.Close()
}
