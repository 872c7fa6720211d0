//go:build fephp_bridge

package integration

// PHP's default MySQL socket, on both PHP backends: an application that
// names the database host "localhost" and no socket (WordPress's
// DB_HOST 'localhost', Adminer's "localhost") connects through the socket
// compiled into PHP. Debian's PHP has /var/run/mysqld/mysqld.sock there
// (/var/run is /run), where Debian's MariaDB listens; scripts/build-php.sh
// builds the embedded PHP with the same --with-mysql-sock.
//
// The test needs a MariaDB on /run/mysqld/mysqld.sock. If one listens
// there (a developer's machine), it uses it: a database and a user of its
// own, made and dropped through root's unix_socket authentication. Else it
// starts one (mariadbd --no-defaults, a temporary datadir, no network, as
// scripts/wp-site.sh does) and stops it at the end, removing the socket
// (and /run/mysqld if it made it). A socket file nothing listens on is
// removed first. It runs as root (CI does); it is not parallel, as the
// socket is the machine's, and it holds an flock on /run/mysqld while it
// uses it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil"
	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

const (
	// mysqlDefaultSocket is where Debian's MariaDB listens, and the socket
	// Debian's PHP is compiled to use (as /var/run/mysqld/mysqld.sock).
	mysqlDefaultSocket = "/run/mysqld/mysqld.sock"
	mariadbdBinary     = "/usr/sbin/mariadbd"
)

// mysqlSocketDB is the database the test's PHP scripts use.
type mysqlSocketDB struct {
	Name, User, Password string
	Token                string // in the table probe, for the scripts to read
}

// mysqlSocketReport is the test script's answer.
type mysqlSocketReport struct {
	SAPI                string          `json:"sapi"`
	MysqliDefaultSocket any             `json:"mysqli.default_socket"` // false: no mysqli
	PDODefaultSocket    any             `json:"pdo_mysql.default_socket"`
	Mysqli              mysqlSocketConn `json:"mysqli"`
	PDO                 mysqlSocketConn `json:"pdo"`
}

type mysqlSocketConn struct {
	Error    string `json:"error"`
	Via      string `json:"via"` // mysqli_get_host_info / PDO::ATTR_CONNECTION_STATUS
	Token    string `json:"token"`
	Inserted int    `json:"inserted"`
}

func TestMySQLDefaultSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the test runs MariaDB on /run/mysqld/mysqld.sock: run it as root (CI does)")
	}
	// Not t.Parallel: /run/mysqld/mysqld.sock is the machine's one socket.
	db := mysqlSocketDatabase(t)

	script := mysqlSocketScript(db)
	// The embedded PHP with fe-php's defaults (the build's php.ini and
	// conf.d, nothing about MySQL in [php.ini]) and /fpm/ on php-fpm.
	s := paritySite(t, "db.php", script, fpmtest.Options{})

	sock, err := os.Stat(mysqlDefaultSocket)
	if err != nil {
		t.Fatal(err)
	}
	reports := map[string]mysqlSocketReport{}
	for _, b := range []struct{ name, path string }{{"embedded", "/db.php"}, {"fpm", "/fpm/db.php"}} {
		t.Run(b.name, func(t *testing.T) {
			resp, body := get(t, s, b.path)
			wantStatus(t, resp, body, http.StatusOK)
			var r mysqlSocketReport
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("GET %s: %v; body %q", b.path, err, trunc(body))
			}
			if (r.SAPI == "fpm-fcgi") != (b.name == "fpm") {
				t.Fatalf("GET %s ran on SAPI %q: not the %s backend", b.path, r.SAPI, b.name)
			}
			reports[b.name] = r
			t.Logf("SAPI %s: mysqli.default_socket %v, pdo_mysql.default_socket %v; mysqli via %q, PDO via %q",
				r.SAPI, r.MysqliDefaultSocket, r.PDODefaultSocket, r.Mysqli.Via, r.PDO.Via)
			for _, ini := range []struct {
				key string
				val any
			}{{"mysqli.default_socket", r.MysqliDefaultSocket}, {"pdo_mysql.default_socket", r.PDODefaultSocket}} {
				path, _ := ini.val.(string)
				if path != "/run/mysqld/mysqld.sock" && path != "/var/run/mysqld/mysqld.sock" {
					t.Errorf("ini_get('%s') = %#v, want Debian's compiled-in /var/run/mysqld/mysqld.sock", ini.key, ini.val)
					continue
				}
				if fi, err := os.Stat(path); err != nil || !os.SameFile(fi, sock) {
					t.Errorf("ini_get('%s') = %q is not the socket MariaDB listens on (%s): %v", ini.key, path, mysqlDefaultSocket, err)
				}
			}
			for _, c := range []struct {
				api  string
				conn mysqlSocketConn
			}{{"mysqli_connect('localhost', ...)", r.Mysqli}, {"new PDO('mysql:host=localhost;dbname=...')", r.PDO}} {
				if c.conn.Error != "" {
					t.Errorf("%s, no socket given: %s", c.api, c.conn.Error)
					continue
				}
				if c.conn.Via != "Localhost via UNIX socket" || c.conn.Token != db.Token || c.conn.Inserted != 1 {
					t.Errorf("%s: connected via %q, read token %q, inserted %d row(s); want \"Localhost via UNIX socket\", %q, 1",
						c.api, c.conn.Via, c.conn.Token, c.conn.Inserted, db.Token)
				}
			}
		})
	}
	if e, f := reports["embedded"], reports["fpm"]; e.MysqliDefaultSocket != f.MysqliDefaultSocket || e.PDODefaultSocket != f.PDODefaultSocket {
		t.Errorf("default sockets: embedded %v / %v, fpm %v / %v; want the same (Debian's)",
			e.MysqliDefaultSocket, e.PDODefaultSocket, f.MysqliDefaultSocket, f.PDODefaultSocket)
	}

	// What the scripts wrote is in the database, from both PHPs.
	var want []string
	for _, b := range []string{"embedded", "fpm"} {
		if sapi := reports[b].SAPI; sapi != "" {
			want = append(want, sapi+"\tmysqli", sapi+"\tpdo")
		}
	}
	got := strings.TrimSpace(mysqlRoot(t, fmt.Sprintf("SELECT sapi, api FROM `%s`.visits ORDER BY id", db.Name)))
	if got != strings.Join(want, "\n") {
		t.Errorf("rows in %s.visits:\n%s\nwant:\n%s", db.Name, got, strings.Join(want, "\n"))
	}
}

// mysqlSocketScript connects as WordPress does with DB_HOST 'localhost':
// no socket, no port.
func mysqlSocketScript(db mysqlSocketDB) string {
	return fmt.Sprintf(`<?php
// Written by TestMySQLDefaultSocket.
const DB_NAME = '%s';
const DB_USER = '%s';
const DB_PASSWORD = '%s';
header('Content-Type: application/json');
$out = [
    'sapi' => PHP_SAPI,
    'mysqli.default_socket' => ini_get('mysqli.default_socket'),
    'pdo_mysql.default_socket' => ini_get('pdo_mysql.default_socket'),
];
try {
    $m = mysqli_connect('localhost', DB_USER, DB_PASSWORD, DB_NAME);
    if ($m === false) {
        throw new Exception(mysqli_connect_error());
    }
    $out['mysqli']['via'] = mysqli_get_host_info($m);
    $out['mysqli']['token'] = mysqli_fetch_row(mysqli_query($m, 'SELECT token FROM probe'))[0];
    mysqli_query($m, "INSERT INTO visits (sapi, api) VALUES ('" . mysqli_real_escape_string($m, PHP_SAPI) . "', 'mysqli')");
    $out['mysqli']['inserted'] = mysqli_affected_rows($m);
    mysqli_close($m);
} catch (Throwable $e) {
    $out['mysqli']['error'] = get_class($e) . ': ' . $e->getMessage();
}
try {
    $pdo = new PDO('mysql:host=localhost;dbname=' . DB_NAME, DB_USER, DB_PASSWORD, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $out['pdo']['via'] = $pdo->getAttribute(PDO::ATTR_CONNECTION_STATUS);
    $out['pdo']['token'] = $pdo->query('SELECT token FROM probe')->fetchColumn();
    $st = $pdo->prepare('INSERT INTO visits (sapi, api) VALUES (?, ?)');
    $st->execute([PHP_SAPI, 'pdo']);
    $out['pdo']['inserted'] = $st->rowCount();
} catch (Throwable $e) {
    $out['pdo']['error'] = get_class($e) . ': ' . $e->getMessage();
}
echo json_encode($out);
`, db.Name, db.User, db.Password)
}

// mysqlSocketDatabase makes sure a MariaDB listens on mysqlDefaultSocket
// (the machine's, or one it starts) and creates a database and a user of
// the test's own there; everything is undone when the test ends.
func mysqlSocketDatabase(t *testing.T) mysqlSocketDB {
	t.Helper()
	dir := filepath.Dir(mysqlDefaultSocket)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Only if empty: a MariaDB package may have put things there since.
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Logf("leaving %s: %v", dir, err)
			}
		})
	}
	mysqlSocketLock(t, dir)

	fi, err := os.Lstat(mysqlDefaultSocket)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		startMySQLOnDefaultSocket(t)
	case err != nil:
		t.Fatal(err)
	case fi.Mode().Type() != fs.ModeSocket:
		t.Fatalf("%s exists and is not a socket (%v): not touching it", mysqlDefaultSocket, fi.Mode())
	default:
		c, err := net.DialTimeout("unix", mysqlDefaultSocket, 2*time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			t.Logf("%s is a stale socket (nothing listens on it): removing it", mysqlDefaultSocket)
			if err := os.Remove(mysqlDefaultSocket); err != nil {
				t.Fatal(err)
			}
			startMySQLOnDefaultSocket(t)
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", mysqlDefaultSocket, err)
		}
		c.Close()
		if !mysqlGreets(mysqlDefaultSocket) {
			t.Fatalf("something listens on %s but does not greet as MySQL/MariaDB", mysqlDefaultSocket)
		}
		if out, err := mysqlRootExec("SELECT 1"); err != nil {
			t.Skipf("a MariaDB listens on %s, but root's unix_socket login (mariadb -uroot) fails, so the test cannot make its database there: %v\n%s",
				mysqlDefaultSocket, err, out)
		}
		t.Logf("using the MariaDB already listening on %s", mysqlDefaultSocket)
	}

	suffix := randomHex(t, 6)
	db := mysqlSocketDB{Name: "fephp_sock_" + suffix, User: "fephp_sock_" + suffix, Password: randomHex(t, 12), Token: "token-" + randomHex(t, 8)}
	t.Cleanup(func() {
		if out, err := mysqlRootExec(fmt.Sprintf("DROP DATABASE IF EXISTS `%s`; DROP USER IF EXISTS '%s'@'localhost';", db.Name, db.User)); err != nil {
			t.Errorf("dropping database and user %s: %v\n%s", db.Name, err, out)
		}
	})
	mysqlRoot(t, fmt.Sprintf(`CREATE DATABASE `+"`%[1]s`"+` CHARACTER SET utf8mb4;
CREATE USER '%[2]s'@'localhost' IDENTIFIED BY '%[3]s';
GRANT ALL PRIVILEGES ON `+"`%[1]s`"+`.* TO '%[2]s'@'localhost';
CREATE TABLE `+"`%[1]s`"+`.probe (token VARCHAR(64) NOT NULL);
INSERT INTO `+"`%[1]s`"+`.probe VALUES ('%[4]s');
CREATE TABLE `+"`%[1]s`"+`.visits (id INT AUTO_INCREMENT PRIMARY KEY, sapi VARCHAR(64) NOT NULL, api VARCHAR(16) NOT NULL);
`, db.Name, db.User, db.Password, db.Token))
	return db
}

// mysqlSocketLock holds an exclusive flock on dir (the socket's
// directory) until the test ends, so that two tests, in this process or
// another, never start or stop a MariaDB on the socket at once.
func mysqlSocketLock(t *testing.T, dir string) {
	t.Helper()
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening %s to lock it: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Close(fd) }) // closing releases the lock
	waitFor(t, 2*time.Minute, "the lock on "+dir+" (another test using "+mysqlDefaultSocket+")", func() bool {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("flock %s: %v", dir, err)
		}
		return err == nil
	})
}

// startMySQLOnDefaultSocket starts a MariaDB of the test's own on
// mysqlDefaultSocket, as scripts/wp-site.sh does (no defaults files, its
// own datadir, root by unix_socket, no network), and waits for its
// greeting. At the end it is stopped and its socket removed.
func startMySQLOnDefaultSocket(t *testing.T) {
	t.Helper()
	for _, f := range []string{mariadbdBinary, "/usr/bin/mariadb-install-db", "/usr/bin/mariadb"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is missing: install mariadb-server (scripts/deps.sh)", f)
		}
	}
	dir := t.TempDir() // removed after the server is stopped (cleanups run last in, first out)
	data := filepath.Join(dir, "data")
	// Its own tmpdir: MariaDB deletes the "#sql*" files of its tmpdir at
	// start, which would be other instances' temporary tables in /tmp.
	tmpdir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpdir, 0o700); err != nil {
		t.Fatal(err)
	}
	install := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
		"--tmpdir="+tmpdir, "--auth-root-authentication-method=socket", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	errLog := filepath.Join(dir, "mysqld.err")
	cmd := exec.Command(mariadbdBinary, "--no-defaults", "--user=root", "--datadir="+data, "--tmpdir="+tmpdir,
		"--socket="+mysqlDefaultSocket, "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--skip-networking", "--log-error="+errLog, "--innodb-buffer-pool-size=64M", "--skip-log-bin")
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", mariadbdBinary, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// On SIGTERM MariaDB shuts down cleanly and removes its socket.
	guard := startOrphanGuard(fmt.Sprintf("kill -TERM %d", cmd.Process.Pid))
	logs := func() string {
		b, _ := os.ReadFile(errLog)
		return tail(out.String()+string(b), 3000)
	}
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				t.Errorf("mariadbd did not stop within 60s of SIGTERM: killing it")
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		guard.stop()
		// Its socket, if it could not remove it itself.
		if fi, err := os.Lstat(mysqlDefaultSocket); err == nil && fi.Mode().Type() == fs.ModeSocket {
			os.Remove(mysqlDefaultSocket)
		}
		if t.Failed() {
			t.Logf("MariaDB log:\n%s", logs())
		}
	})
	waitFor(t, 60*time.Second, "MariaDB to greet on "+mysqlDefaultSocket, func() bool {
		select {
		case <-exited:
			t.Fatalf("mariadbd exited at start-up (%v):\n%s", cmd.ProcessState, logs())
		default:
		}
		return mysqlGreets(mysqlDefaultSocket)
	})
	t.Logf("started MariaDB on %s (datadir %s)", mysqlDefaultSocket, data)
}

// mysqlGreets reports whether a MySQL server answers on the Unix socket
// sock: it sends its handshake packet (protocol version 10) first.
func mysqlGreets(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var head [5]byte // 3 bytes length, 1 sequence number, protocol version
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return false
	}
	return head[3] == 0 && head[4] == 10
}

// mysqlRootExec runs sql as MariaDB's root (unix_socket authentication)
// on mysqlDefaultSocket; the output is tab-separated rows, no header.
func mysqlRootExec(sql string) (string, error) {
	cmd := exec.Command("mariadb", "--no-defaults", "--socket="+mysqlDefaultSocket, "-uroot", "-N", "-B", "-e", sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func mysqlRoot(t *testing.T, sql string) string {
	t.Helper()
	out, err := mysqlRootExec(sql)
	if err != nil {
		t.Fatalf("mariadb -uroot -e %q: %v\n%s", sql, err, out)
	}
	return out
}
