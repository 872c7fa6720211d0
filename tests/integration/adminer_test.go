//go:build fephp_bridge

package integration

// TestAdminer serves Debian's adminer package with the recipe's config,
// examples/adminer/fe-php.toml (only the listen address, the session and
// upload directories and, for the PHP-FPM run, the backend and its socket
// changed), against a MariaDB the test starts on a Unix socket. It uses
// Adminer over HTTP as a person would: the login form, the SQL command
// page (create a table, insert, select), the Import page (a multipart
// upload of an SQL file bigger than fe-php's in-memory body buffer), and
// the Export page (the dump as text and as gzip), every form with the
// CSRF token Adminer put in it. It runs on the embedded backend and on a
// real php-fpm.

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

func TestAdminer(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/share/adminer/adminer.php"); err != nil {
		t.Fatal("Debian's adminer package is not installed (scripts/deps.sh installs it)")
	}
	if _, err := os.Stat("/etc/adminer/conf.php"); err != nil {
		t.Fatal("/etc/adminer/conf.php is missing: reinstall Debian's adminer package")
	}
	db := startAdminerMariaDB(t)
	for _, backend := range []string{"embedded", "fastcgi"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			a := startAdminer(t, db, backend)
			testAdminerFlow(t, a)
		})
	}
}

// adminerMariaDB is a throwaway MariaDB: mariadbd on a Unix socket in a
// temp dir, no network, root (or the OS user running the test) by
// unix_socket authentication, as scripts/wp-site.sh starts it.
type adminerMariaDB struct {
	sock   string
	osUser string
}

func startAdminerMariaDB(t *testing.T) *adminerMariaDB {
	t.Helper()
	for _, f := range []string{"/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is missing: install mariadb-server (scripts/deps.sh)", f)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// A short directory: the socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "fephp-adm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &adminerMariaDB{sock: filepath.Join(dir, "mysql.sock"), osUser: u.Username}
	datadir := filepath.Join(dir, "mysql")
	errLog := filepath.Join(dir, "mysql.err")
	// Its own tmpdir: MariaDB deletes the "#sql*" files of its tmpdir at
	// start, which would be other instances' temporary tables in /tmp.
	tmpdir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpdir, 0o700); err != nil {
		t.Fatal(err)
	}
	install := exec.Command("/usr/bin/mariadb-install-db", "--no-defaults", "--user="+u.Username,
		"--datadir="+datadir, "--tmpdir="+tmpdir, "--auth-root-authentication-method=socket", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	cmd := exec.Command("/usr/sbin/mariadbd", "--no-defaults", "--user="+u.Username,
		"--datadir="+datadir, "--tmpdir="+tmpdir, "--socket="+m.sock, "--pid-file="+filepath.Join(dir, "mysql.pid"),
		"--skip-networking", "--log-error="+errLog, "--innodb-buffer-pool-size=64M", "--skip-log-bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting mariadbd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("mariadbd did not stop within 60s of SIGTERM; killed it")
		}
		if t.Failed() {
			if b, err := os.ReadFile(errLog); err == nil {
				t.Logf("MariaDB log:\n%s", tail(string(b), 3000))
			}
		}
	})
	waitFor(t, 60*time.Second, "MariaDB to accept connections on "+m.sock, func() bool {
		select {
		case <-exited:
			b, _ := os.ReadFile(errLog)
			t.Fatalf("mariadbd exited before accepting connections:\n%s", tail(string(b), 3000))
		default:
		}
		c, err := net.Dial("unix", m.sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return m
}

// exec runs SQL as MariaDB's administrator (the OS user, by unix_socket).
func (m *adminerMariaDB) exec(t *testing.T, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/mariadb", "--no-defaults", "--socket="+m.sock,
		"--user="+m.osUser, "--batch", "--skip-column-names", "-e", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb -e %q: %v\n%s", sql, err, out)
	}
	return string(out)
}

// adminerSite is fe-php serving Adminer, and a browser's cookie jar.
type adminerSite struct {
	srv     *Server
	backend string
	client  *http.Client
	// What the login form gets: Adminer's "server" is host:socket.
	server, username, password, db string
	word                           string // unique, to look for
}

// startAdminer makes a database and a user with a password for backend
// (Adminer refuses passwordless logins), and starts fe-php on the recipe's
// config, with PHP-FPM if backend is fastcgi.
func startAdminer(t *testing.T, db *adminerMariaDB, backend string) *adminerSite {
	t.Helper()
	a := &adminerSite{
		backend:  backend,
		server:   "localhost:" + db.sock,
		username: "adm_" + backend,
		password: "pw-" + randomHex(t, 8),
		db:       "shop_" + backend,
		word:     "kumquat" + randomHex(t, 4),
	}
	db.exec(t, fmt.Sprintf("CREATE DATABASE `%s` CHARACTER SET utf8mb4; "+
		"CREATE USER '%s'@'localhost' IDENTIFIED BY '%s'; "+
		"GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'localhost';",
		a.db, a.username, a.password, a.db, a.username))

	// PHP's sessions and Adminer's temp files (its login-attempt counter)
	// go to a directory of the test's, not /var/lib/php/sessions or /tmp.
	state := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(recipeExampleDir(t, "adminer"), "fe-php.toml"))
	if err != nil {
		t.Fatal(err)
	}
	set := func(cfg, old, new string) string { return recipeSetLine(t, cfg, regexp.QuoteMeta(old), new) }
	config := set(string(cfg), `listen = "127.0.0.1:8081"`, "") // startServer picks a free port
	config = set(config, `"session.save_path" = "/var/lib/php/sessions"`,
		fmt.Sprintf("%q = %q\n%q = %q", "session.save_path", state, "upload_tmp_dir", state))
	if backend == "fastcgi" {
		fpm := fpmtest.Start(t, fpmtest.Options{Children: 3, DocRoot: "/etc/adminer",
			ExtraINI: map[string]string{"session.save_path": state, "upload_tmp_dir": state}})
		config = set(config, `fpm_socket = "/run/php/php8.2-fpm.sock"`, fmt.Sprintf("fpm_socket = %q", fpm.Address))
		config = set(config, `default_backend = "embedded"`, `default_backend = "fastcgi"`)
	}
	a.srv = startServer(t, config, nil)
	jar, _ := cookiejar.New(nil)
	a.client = &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	return a
}

func testAdminerFlow(t *testing.T, a *adminerSite) {
	t.Run("the login page and Adminer's own assets", func(t *testing.T) {
		resp, body := a.do(t, "GET", "/", nil, "")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte("<title>Login - Adminer</title>")) || !bytes.Contains(body, []byte(`name="auth[server]"`)) {
			t.Fatalf("/ is not Adminer's login form: %s", trunc(body))
		}
		appWantBackend(t, a.srv, resp, a.backend)
		// The compiled adminer.php serves its CSS through itself.
		resp, body = a.do(t, "GET", "/?file=default.css&version=4.8.1", nil, "")
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || !bytes.Contains(body, []byte("font-family")) {
			t.Errorf("default.css: Content-Type %q, body %s", ct, trunc(body))
		}
		// Its "HTTP/1.1 304 Not Modified" header line is a 304.
		req := a.request(t, "GET", "/?file=default.css&version=4.8.1", nil, "")
		req.Header.Set("If-Modified-Since", time.Now().UTC().Format(http.TimeFormat))
		resp, body = a.send(t, req, false)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Errorf("default.css with If-Modified-Since: %d with %d bytes, want an empty 304", resp.StatusCode, len(body))
		}
		// Nothing else in /etc/adminer is reachable.
		for _, p := range []string{"/adminer.php", "/index.php", "/adminer/index.php", "/compile.php"} {
			resp, body := a.do(t, "GET", p, nil, "")
			wantStatus(t, resp, body, 404)
		}
	})

	t.Run("a wrong password is refused", func(t *testing.T) {
		resp, body := a.login(t, a.password+"-wrong")
		if resp.StatusCode != 403 || !bytes.Contains(body, []byte("Access denied for user")) {
			t.Fatalf("login with a wrong password: %s, want 403 with MariaDB's refusal: %s", describe(resp), adminerMessages(body))
		}
	})

	t.Run("login", func(t *testing.T) {
		resp, body := a.login(t, a.password)
		wantStatus(t, resp, body, 200)
		if resp.Request.URL.Query().Get("username") != a.username {
			t.Fatalf("login ended at %s, not on the database page: %s", resp.Request.URL, adminerMessages(body))
		}
		if !bytes.Contains(body, []byte("Database: "+a.db)) {
			t.Fatalf("after login, no %q: %s", "Database: "+a.db, adminerMessages(body))
		}
	})

	t.Run("SQL command: create, insert, select", func(t *testing.T) {
		token := a.token(t, "sql=")
		query := fmt.Sprintf("CREATE TABLE fruits (id int PRIMARY KEY, name varchar(50) NOT NULL, color varchar(20));\n"+
			"INSERT INTO fruits VALUES (1, '%s', 'orange'), (2, 'loquat', 'yellow'), (3, 'ume', 'green');\n"+
			"SELECT name, color FROM fruits ORDER BY id;", a.word)
		resp, body := a.postForm(t, "sql=", url.Values{"query": {query}, "limit": {""}, "token": {token}})
		wantStatus(t, resp, body, 200)
		a.wantNoError(t, body)
		for _, want := range []string{
			"Query executed OK, 3 rows affected.",
			"<td>" + a.word + "<td>orange", "<td>loquat<td>yellow", "<td>ume<td>green",
			"3 rows",
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("the SQL page does not show %q: %s", want, adminerMessages(body))
			}
		}
		appWantBackend(t, a.srv, resp, a.backend)
		// The table's own page lists the rows too.
		resp, body = a.do(t, "GET", a.path("select=fruits"), nil, "")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte(a.word)) {
			t.Errorf("select=fruits does not list %s: %s", a.word, trunc(body))
		}
	})

	t.Run("a POST without its CSRF token is refused", func(t *testing.T) {
		resp, body := a.postForm(t, "sql=", url.Values{"query": {"DROP TABLE fruits"}, "token": {"1:2"}})
		if !bytes.Contains(body, []byte("Invalid CSRF token")) {
			t.Errorf("a POST with a forged token: %s: %s", describe(resp), adminerMessages(body))
		}
		resp, body = a.do(t, "GET", a.path("select=fruits"), nil, "")
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(a.word)) {
			t.Errorf("the table is gone after a forged POST: %s", describe(resp))
		}
	})

	const bulkRows = 3000
	t.Run("import an SQL file", func(t *testing.T) {
		sql, err := os.ReadFile(filepath.Join("testdata", "adminer-import.sql"))
		if err != nil {
			t.Fatal(err)
		}
		var file bytes.Buffer
		file.Write(sql)
		for i := 1; i <= bulkRows; i++ {
			if i%100 == 1 {
				file.WriteString("INSERT INTO `pantry_bulk` (`id`, `payload`) VALUES\n")
			}
			fmt.Fprintf(&file, "(%d, 'bulk-row-%05d %s')", i, i, strings.Repeat("x", 60))
			if i%100 == 0 {
				file.WriteString(";\n")
			} else {
				file.WriteString(",\n")
			}
		}
		if file.Len() <= 128<<10 {
			t.Fatalf("the import is %d bytes, want more than fe-php's 128K in-memory body buffer", file.Len())
		}
		// The Import page states the upload limit: the config's, 64M.
		resp, body := a.do(t, "GET", a.path("import="), nil, "")
		wantStatus(t, resp, body, 200)
		if !bytes.Contains(body, []byte("(&lt; 64MB)")) || !bytes.Contains(body, []byte(`name='sql_file[]'`)) {
			t.Errorf("the Import page does not offer a 64M upload: %s", adminerMessages(body))
		}
		resp, body = a.importSQL(t, "import.sql", file.Bytes())
		wantStatus(t, resp, body, 200)
		a.wantNoError(t, body)
		// The file's 7 statements (SET, 2 DROP, 3 CREATE, the INSERT, the
		// trigger; DELIMITER lines are Adminer's, not statements) and the
		// bulk INSERTs, 100 rows each.
		if want := fmt.Sprintf("%d queries executed OK.", 7+bulkRows/100); !bytes.Contains(body, []byte(want)) {
			t.Fatalf("the import says %q, want %q", adminerMessages(body), want)
		}
		appWantBackend(t, a.srv, resp, a.backend)

		// What the file made, seen on the SQL page.
		token := a.token(t, "sql=")
		resp, body = a.postForm(t, "sql=", url.Values{"token": {token}, "limit": {""}, "query": {
			"SELECT item, note, qty FROM pantry ORDER BY id;\n" +
				"SELECT COUNT(*) AS bulk_count, MAX(payload) AS bulk_max FROM pantry_bulk;\n" +
				"INSERT INTO pantry (item, qty) VALUES ('trigger-check', -5);\n" +
				"SELECT CONCAT('qty=', qty) AS checked FROM pantry WHERE item = 'trigger-check';"}})
		wantStatus(t, resp, body, 200)
		a.wantNoError(t, body)
		for _, want := range []string{
			"<td>crème fraîche<td>keep cold; use within a week<td>2",
			"<td>yuzu kosho<td>ゆず胡椒 -- not a comment<td>1",
			"<td>sourdough starter<td>feed daily /* not a comment either */<td>1",
			fmt.Sprintf("<td>%d<td>bulk-row-%05d", bulkRows, bulkRows),
			"<td>qty=0", // the trigger from the DELIMITER block ran
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("after the import, the SQL page does not show %q: %s", want, adminerMessages(body))
			}
		}
	})

	var dump []byte
	t.Run("export the database as SQL", func(t *testing.T) {
		resp, body := a.export(t, "text")
		wantStatus(t, resp, body, 200)
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("export Content-Type %q, want text/plain; charset=utf-8", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "" {
			t.Errorf("an export to open has Content-Disposition %q", cd)
		}
		for _, want := range []string{
			"-- Adminer 4.8.1 MySQL",
			"CREATE TABLE `fruits`", "INSERT INTO `fruits`", "'" + a.word + "'", "'loquat'",
			"CREATE TABLE `pantry`", "'crème fraîche'", "CREATE TRIGGER `pantry_qty`",
			"CREATE TABLE `pantry_bulk`", fmt.Sprintf("'bulk-row-%05d", bulkRows),
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("the export lacks %q:\n%s", want, trunc(body))
			}
		}
		if n := bytes.Count(body, []byte("'bulk-row-")); n != bulkRows {
			t.Errorf("the export has %d rows of pantry_bulk, want %d", n, bulkRows)
		}
		appWantBackend(t, a.srv, resp, a.backend)
		dump = body

		// The same as a gzip download (Adminer compresses with an output
		// buffer and flushes).
		resp, gz := a.export(t, "gz")
		wantStatus(t, resp, gz, 200)
		if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/x-gzip" || cd != "attachment; filename="+a.db+".sql.gz" {
			t.Errorf("gzip export: Content-Type %q, Content-Disposition %q", ct, cd)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("the gzip export is not gzip: %v (%d bytes)", err, len(gz))
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("the gzip export does not decompress: %v", err)
		}
		if !bytes.Contains(plain, []byte("CREATE TABLE `fruits`")) || bytes.Count(plain, []byte("'bulk-row-")) != bulkRows {
			t.Errorf("the gzip export is not the dump: %s", trunc(plain))
		}
	})

	t.Run("the export imports back", func(t *testing.T) {
		if dump == nil {
			t.Skip("no export")
		}
		a.mustRun(t, "DROP TABLE fruits; DROP TABLE pantry; DROP TABLE pantry_bulk;")
		resp, body := a.importSQL(t, a.db+".sql", dump)
		wantStatus(t, resp, body, 200)
		a.wantNoError(t, body)
		body = a.mustRun(t, "SELECT COUNT(*) AS n FROM pantry_bulk; SELECT name FROM fruits WHERE id = 1;")
		if !bytes.Contains(body, []byte(fmt.Sprintf("<td>%d</table>", bulkRows))) || !bytes.Contains(body, []byte("<td>"+a.word)) {
			t.Errorf("after importing the export: %s", adminerMessages(body))
		}
	})
}

// login posts Adminer's login form (which has no CSRF token: Adminer
// makes the session's token at login) and follows the redirect.
func (a *adminerSite) login(t *testing.T, password string) (*http.Response, []byte) {
	t.Helper()
	form := url.Values{
		"auth[driver]": {"server"}, "auth[server]": {a.server}, "auth[username]": {a.username},
		"auth[password]": {password}, "auth[db]": {a.db},
	}
	return a.do(t, "POST", "/", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

// path is Adminer's URL for a page of the logged-in database: "/?server=
// ...&username=...&db=...&" then page, e.g. "sql=".
func (a *adminerSite) path(page string) string {
	return "/?server=" + url.QueryEscape(a.server) + "&username=" + url.QueryEscape(a.username) +
		"&db=" + url.QueryEscape(a.db) + "&" + page
}

var adminerToken = regexp.MustCompile(`name=["']token["'] value=["'](\d+:\d+)["']`)

// token loads page and returns the CSRF token of its form.
func (a *adminerSite) token(t *testing.T, page string) string {
	t.Helper()
	resp, body := a.do(t, "GET", a.path(page), nil, "")
	wantStatus(t, resp, body, 200)
	m := adminerToken.FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s has no CSRF token (logged out?): %s", a.path(page), adminerMessages(body))
	}
	return string(m[1])
}

func (a *adminerSite) postForm(t *testing.T, page string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	return a.do(t, "POST", a.path(page), strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

// mustRun runs SQL on the SQL command page and fails on any error.
func (a *adminerSite) mustRun(t *testing.T, sql string) []byte {
	t.Helper()
	resp, body := a.postForm(t, "sql=", url.Values{"query": {sql}, "limit": {""}, "token": {a.token(t, "sql=")}})
	wantStatus(t, resp, body, 200)
	a.wantNoError(t, body)
	return body
}

// importSQL uploads an SQL file on the Import page, as its form does
// (multipart, "Stop on error" and "Show only errors" ticked).
func (a *adminerSite) importSQL(t *testing.T, name string, sql []byte) (*http.Response, []byte) {
	t.Helper()
	token := a.token(t, "import=")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile("sql_file[]", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(sql)
	mw.WriteField("error_stops", "1")
	mw.WriteField("only_errors", "1")
	mw.WriteField("token", token)
	mw.Close()
	return a.do(t, "POST", a.path("import="), &b, mw.FormDataContentType())
}

// export submits the Export page's form for every table, structure and
// data, to output ("text": shown, "gz": a gzip download).
func (a *adminerSite) export(t *testing.T, output string) (*http.Response, []byte) {
	t.Helper()
	token := a.token(t, "dump=")
	form := url.Values{
		"output": {output}, "format": {"sql"}, "db_style": {""}, "routines": {"1"}, "events": {"1"},
		"table_style": {"DROP+CREATE"}, "triggers": {"1"}, "data_style": {"INSERT"}, "token": {token},
	}
	for _, table := range []string{"fruits", "pantry", "pantry_bulk"} {
		form.Add("tables[]", table)
		form.Add("data[]", table)
	}
	return a.postForm(t, "dump=", form)
}

func (a *adminerSite) request(t *testing.T, method, path string, body io.Reader, contentType string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL(path), body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// do sends a request with the session's cookies and follows redirects.
func (a *adminerSite) do(t *testing.T, method, path string, body io.Reader, contentType string) (*http.Response, []byte) {
	t.Helper()
	return a.send(t, a.request(t, method, path, body, contentType), true)
}

func (a *adminerSite) send(t *testing.T, req *http.Request, follow bool) (*http.Response, []byte) {
	t.Helper()
	return clientDo(t, a.client, req, follow)
}

// wantNoError fails if Adminer's page shows an error message.
func (a *adminerSite) wantNoError(t *testing.T, body []byte) {
	t.Helper()
	if regexp.MustCompile(`class=["']error["']`).Match(body) {
		t.Fatalf("Adminer shows an error: %s", adminerMessages(body))
	}
}

// adminerMessages is the text of the messages and errors on an Adminer
// page (for failure messages), or the start of the page if it has none.
func adminerMessages(page []byte) string {
	var msgs []string
	for _, m := range regexp.MustCompile(`(?s)<(?:div|p) class=["'](?:error|message)["'][^>]*>(.*?)(?:</div>|</p>|\n<)`).FindAllSubmatch(page, -1) {
		text := regexp.MustCompile(`<[^>]*>`).ReplaceAll(m[1], nil)
		msgs = append(msgs, strings.Join(strings.Fields(string(text)), " "))
	}
	if msgs == nil {
		return "(no message on the page) " + trunc(page)
	}
	return strings.Join(msgs, " | ")
}

// appWantBackend checks, in fe-php's access log, which backend served resp
// (found by its X-Request-Id; the log is flushed every second).
func appWantBackend(t *testing.T, s *Server, resp *http.Response, want string) {
	t.Helper()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("%s: no X-Request-Id", describe(resp))
	}
	re := regexp.MustCompile(`id=` + regexp.QuoteMeta(id) + ` .* backend=(\S+)`)
	var got string
	waitFor(t, 5*time.Second, "the access log line of "+id, func() bool {
		if m := re.FindStringSubmatch(s.Stdout()); m != nil {
			got = m[1]
			return true
		}
		return false
	})
	if got != want {
		t.Errorf("%s was served by %s, want %s", describe(resp), got, want)
	}
}
