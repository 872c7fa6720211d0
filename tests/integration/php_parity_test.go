//go:build fephp_bridge

package integration

// Parity of the embedded PHP with Debian's PHP-FPM: the ZTS build of
// scripts/build-php.sh loads, with its default php.ini and conf.d, every
// extension that Debian's php-fpm8.2 loads on this machine (with the
// php8.2-* packages scripts/deps.sh installs), and it has Debian's
// compiled-in MySQL socket.
//
// One fe-php serves the same script on both PHP backends: /parity.php on
// the embedded backend (the default) and /fpm/parity.php on the fastcgi
// backend, to a php-fpm8.2 the test starts (fpmtest: its own php.ini, but
// Debian's conf.d, /etc/php/8.2/fpm/conf.d, so Debian's extensions).
//
// The embedded side runs with fe-php's defaults (no php.ini_file): it
// passes once fe-php reads the build's php.ini and conf.d by default
// (issue 10, item 2). FEPHP_TEST_LIBPHP=/path/to/libphp.so runs it against
// another ZTS build than php.libphp_path's default (e.g. a scratch prefix
// of build-php.sh).

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// parityExceptions are the modules Debian's FPM may load that the
// embedded PHP does not have, each with the reason. The extensions are
// those scripts/build-php.sh leaves out; they show up on the FPM side only
// when their Debian package is installed.
var parityExceptions = map[string]string{
	"cgi-fcgi": "FPM's SAPI module (fastcgi_finish_request, apache_request_headers, ...): " +
		"the embedded backend has fe-php's own SAPI with these functions instead",
	"imap": "not built: UW c-client keeps process-wide state (unsafe in a threaded server), " +
		"needs 24 more -dev packages, and the extension left PHP in 8.4",
	"snmp": "not built: net-snmp (18 more -dev packages) has process-wide MIB state " +
		"and reads the MIBs at module start-up",
	"pdo_firebird": "not built (php8.2-interbase): Firebird client library, rarely on web hosts",
	"pdo_dblib":    "not built (php8.2-sybase): FreeTDS client library, rarely on web hosts",
	"odbc":         "not built (php8.2-odbc): unixODBC client library, rarely on web hosts",
	"pdo_odbc":     "not built (php8.2-odbc): unixODBC client library, rarely on web hosts",
	"enchant":      "not built: libenchant-2-dev brings GLib's development stack (17 packages)",
	"memcached":    "not built: Debian's php-memcached source is not downloadable from the mirror (404)",
	"msgpack":      "not built: only php-memcached needs it here (left out with it)",
}

// parityScript reports what a request sees of its PHP.
const parityScript = `<?php
header('Content-Type: application/json');
echo json_encode([
    'sapi' => PHP_SAPI,
    'version' => PHP_VERSION,
    'zts' => PHP_ZTS,
    'extensions' => get_loaded_extensions(),
    'zend_extensions' => get_loaded_extensions(true),
    'ini_file' => php_ini_loaded_file(),
    'scanned' => php_ini_scanned_files(),
    'ini' => [
        'mysqli.default_socket' => ini_get('mysqli.default_socket'),
        'pdo_mysql.default_socket' => ini_get('pdo_mysql.default_socket'),
    ],
]);
`

// parityReport is parityScript's answer. The ini values are strings, or
// false when the setting does not exist (its extension is not loaded).
type parityReport struct {
	SAPI           string         `json:"sapi"`
	Version        string         `json:"version"`
	ZTS            int            `json:"zts"`
	Extensions     []string       `json:"extensions"`
	ZendExtensions []string       `json:"zend_extensions"`
	INIFile        any            `json:"ini_file"`
	Scanned        any            `json:"scanned"`
	INI            map[string]any `json:"ini"`
}

// paritySite serves script (as name) on both PHP backends of one fe-php:
// /name on embedded (fe-php's defaults, or FEPHP_TEST_LIBPHP's libphp) and
// /fpm/name on a php-fpm8.2 of one child started with opts.
func paritySite(t *testing.T, name, script string, opts fpmtest.Options) *Server {
	t.Helper()
	return paritySiteThreads(t, name, script, opts, 1)
}

// paritySiteThreads is paritySite with threads PHP threads on the embedded
// side, in one worker process: concurrent requests share its PHP.
func paritySiteThreads(t *testing.T, name, script string, opts fpmtest.Options, threads int) *Server {
	t.Helper()
	return paritySiteFiles(t, map[string]string{name: script}, opts, threads)
}

// paritySiteFiles is paritySiteThreads serving files (writeFiles' map): each
// under / on the embedded backend and under /fpm/ on FPM.
func paritySiteFiles(t *testing.T, files map[string]string, opts fpmtest.Options, threads int) *Server {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, files)
	writeFiles(t, filepath.Join(root, "fpm"), files)
	opts.Children, opts.DocRoot = 1, root
	f := fpmtest.Start(t, opts)
	libphp := ""
	if p := os.Getenv("FEPHP_TEST_LIBPHP"); p != "" {
		libphp = fmt.Sprintf("libphp_path = %q", p)
	}
	return startServer(t, fmt.Sprintf(`[server]
workers = 1

[php]
document_root = %q
front_controller = ""
fpm_socket = %q
worker_pool_size = %d
%s

[backend]
default_backend = "embedded"

[[backend.routing_rules]]
pattern = { type = "prefix", value = "/fpm/" }
backend = "fastcgi"
priority = 100
`, root, f.Address, threads, libphp), nil)
}

func fetchParity(t *testing.T, s *Server, path string) parityReport {
	t.Helper()
	resp, body := get(t, s, path)
	wantStatus(t, resp, body, http.StatusOK)
	var r parityReport
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET %s: %v; body %q", path, err, trunc(body))
	}
	return r
}

// scannedCount is how many conf.d files PHP read (php_ini_scanned_files
// lists them separated by ",\n"; false when it read none).
func (r parityReport) scannedCount() int {
	list, ok := r.Scanned.(string)
	if !ok || strings.TrimSpace(list) == "" {
		return 0
	}
	return len(strings.Split(strings.TrimSpace(list), ","))
}

// modules is the set of a report's PHP and Zend modules, by lower-case
// name (PHP compares module names without case).
func (r parityReport) modules() map[string]string {
	m := map[string]string{}
	for _, e := range slices.Concat(r.Extensions, r.ZendExtensions) {
		m[strings.ToLower(e)] = e
	}
	return m
}

func TestEmbeddedExtensionsMatchFPM(t *testing.T) {
	t.Parallel()
	s := paritySite(t, "parity.php", parityScript, fpmtest.Options{})
	fpm := fetchParity(t, s, "/fpm/parity.php")
	emb := fetchParity(t, s, "/parity.php")
	if fpm.SAPI != "fpm-fcgi" {
		t.Fatalf("/fpm/parity.php ran on SAPI %q, want fpm-fcgi (the fastcgi backend)", fpm.SAPI)
	}
	if emb.SAPI == "fpm-fcgi" || emb.ZTS != 1 {
		t.Fatalf("/parity.php ran on SAPI %q (ZTS %d), want the embedded backend's ZTS PHP", emb.SAPI, emb.ZTS)
	}
	t.Logf("fpm: PHP %s, %d modules, php.ini %v", fpm.Version, len(fpm.modules()), fpm.INIFile)
	t.Logf("embedded: PHP %s, %d modules, php.ini %v, %d conf.d files", emb.Version, len(emb.modules()), emb.INIFile, emb.scannedCount())

	// Every module FPM loads is loaded on embedded too, unless excepted.
	fpmMods, embMods := fpm.modules(), emb.modules()
	var missing, excepted []string
	for _, k := range slices.Sorted(maps.Keys(fpmMods)) {
		if _, ok := embMods[k]; ok {
			continue
		}
		if why, ok := parityExceptions[k]; ok {
			excepted = append(excepted, fmt.Sprintf("%s (%s)", fpmMods[k], why))
			continue
		}
		missing = append(missing, fpmMods[k])
	}
	for _, e := range excepted {
		t.Logf("FPM loads %s; embedded does not, as expected", e)
	}
	var extra []string
	for k, name := range embMods {
		if _, ok := fpmMods[k]; !ok {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	t.Logf("embedded only (built by scripts/build-php.sh, not installed for Debian's FPM here): %s", strings.Join(extra, " "))
	if len(missing) > 0 {
		t.Errorf("modules Debian's php-fpm8.2 loads that embedded PHP does not: %s\n"+
			"(embedded php.ini %v, scanned %v: without the build's php.ini and conf.d the shared modules are not loaded)",
			strings.Join(missing, " "), emb.INIFile, emb.Scanned)
	}
	// A module that fails to load says so on fe-php's stderr at start-up
	// (PHP's startup errors; it is then missing above too, or half there).
	for _, line := range strings.Split(s.Stderr(), "\n") {
		switch {
		case strings.Contains(line, "Unable to load dynamic library"), strings.Contains(line, "PHP Startup:"):
			t.Errorf("fe-php's PHP start-up: %s", line)
		case strings.Contains(line, "it was already loaded"):
			// e.g. "Cannot load Zend OPcache": conf.d's 10-opcache.ini and
			// [php.opcache] both load it; harmless, but noise.
			t.Logf("fe-php's PHP start-up: %s", line)
		}
	}

	// The compiled-in MySQL socket: mysqli and pdo_mysql connect to
	// "localhost" through it (WordPress's and Adminer's DB_HOST).
	for _, key := range []string{"mysqli.default_socket", "pdo_mysql.default_socket"} {
		fv, ev := fpm.INI[key], emb.INI[key]
		if fs, ok := fv.(string); !ok || fs == "" {
			t.Errorf("FPM's %s is %#v: want Debian's compiled-in socket path (is php8.2-mysql installed?)", key, fv)
			continue
		}
		if ev != fv {
			t.Errorf("%s: embedded %#v, FPM %#v; want the same", key, ev, fv)
		}
	}
}

// iniParityScript reports every ini directive's value for the request.
const iniParityScript = `<?php
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'ini' => ini_get_all(null, false)]);
`

// iniDifferences are the directives whose value may differ between the
// embedded PHP (fe-php's defaults, the ZTS build's php.ini and conf.d) and
// Debian's php-fpm8.2 with its own php.ini, each with the reason.
var iniDifferences = map[string]string{
	"extension_dir": "each build has its own module directory",
}

// The same PHP-visible settings on both backends: every ini directive the
// two PHPs share has the same value under fe-php's defaults (Debian's
// production php.ini in the ZTS build) as under Debian's FPM with
// Debian's own /etc/php/8.2/fpm/php.ini, except iniDifferences.
func TestEmbeddedINIMatchesFPM(t *testing.T) {
	t.Parallel()
	const debianINI = "/etc/php/8.2/fpm/php.ini"
	if _, err := os.Stat(debianINI); err != nil {
		t.Fatalf("%s: %v (apt-get install php8.2-fpm; scripts/deps.sh does)", debianINI, err)
	}
	s := paritySite(t, "ini.php", iniParityScript, fpmtest.Options{INIFile: debianINI})
	type report struct {
		SAPI string         `json:"sapi"`
		INI  map[string]any `json:"ini"`
	}
	fetch := func(path string) report {
		resp, body := get(t, s, path)
		wantStatus(t, resp, body, http.StatusOK)
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return r
	}
	fpm, emb := fetch("/fpm/ini.php"), fetch("/ini.php")
	if fpm.SAPI != "fpm-fcgi" || emb.SAPI == "fpm-fcgi" {
		t.Fatalf("SAPIs %q (fpm) and %q (embedded)", fpm.SAPI, emb.SAPI)
	}
	shared := 0
	for _, k := range slices.Sorted(maps.Keys(fpm.INI)) {
		ev, ok := emb.INI[k]
		if !ok {
			continue // a directive of FPM's SAPI (cgi.*, fpm.*) or of an extension embedded lacks (parityExceptions)
		}
		shared++
		if fmt.Sprint(ev) == fmt.Sprint(fpm.INI[k]) {
			continue
		}
		if why, ok := iniDifferences[k]; ok {
			t.Logf("%s: embedded %v, FPM %v (%s)", k, ev, fpm.INI[k], why)
			continue
		}
		t.Errorf("%s: embedded %q, Debian's FPM %q", k, ev, fpm.INI[k])
	}
	t.Logf("%d directives shared, %d FPM only, %d embedded only", shared, len(fpm.INI)-shared, len(emb.INI)-shared)
	if shared < 200 {
		t.Errorf("only %d directives shared: is the FPM side running with its conf.d?", shared)
	}
}

// tzParityScript reads zones from the system's zone files (Debian's PHP
// uses /usr/share/zoneinfo, not PHP's bundled database): offsets,
// abbreviations, transitions, the location table, and zones that do not
// exist or try to leave the directory.
const tzParityScript = `<?php
header('Content-Type: text/plain');
$out = ['ids' => count(timezone_identifiers_list())];
foreach (['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'Australia/Lord_Howe',
    'America/Argentina/Buenos_Aires', 'Nope/Zone', '../../etc/passwd', 'Europe/../UTC'] as $id) {
    try {
        $tz = new DateTimeZone($id);
    } catch (Exception $e) {
        $out[$id] = get_class($e) . ': ' . $e->getMessage();
        continue;
    }
    $tr = $tz->getTransitions(946684800, 1893456000);
    $out[$id] = [
        'name' => $tz->getName(),
        'location' => $tz->getLocation(),
        'transitions' => count($tr),
        'last' => end($tr),
        'dates' => array_map(fn($t) => (new DateTime("@$t"))->setTimezone($tz)->format('c T I'),
            [0, 1700000000, 1719792000, 4102444800]),
    ];
}
date_default_timezone_set('Europe/Paris');
$out['date'] = date('Y-m-d H:i:s T', 1711846800); // the night the clocks change
echo PHP_SAPI, "\n", json_encode($out);
`

// Time zones as Debian's PHP-FPM reads them: Debian's PHP, and the
// embedded build made from its source, read /usr/share/zoneinfo (Debian's
// system-tzdata patch), not PHP's bundled database. The answer must be byte
// for byte FPM's, on the first request of a PHP thread and on the next ones
// (PHP parses the zone again every request).
func TestEmbeddedTimezonesMatchFPM(t *testing.T) {
	t.Parallel()
	s := paritySite(t, "tz.php", tzParityScript, fpmtest.Options{})
	fetch := func(path string) (sapi, report string) {
		sapi, report, err := fetchSAPIReport(s, path)
		if err != nil {
			t.Fatal(err)
		}
		return sapi, report
	}
	sapi, fpm := fetch("/fpm/tz.php")
	var report map[string]any
	if err := json.Unmarshal([]byte(fpm), &report); err != nil || sapi != "fpm-fcgi" {
		t.Fatalf("/fpm/tz.php on SAPI %q: %v, %.300s", sapi, err, fpm)
	}
	if p, ok := report["Europe/Paris"].(map[string]any); !ok || p["transitions"] == float64(0) {
		t.Fatalf("FPM found no transitions for Europe/Paris: %.300s", fpm)
	}
	for i := range 3 {
		sapi, got := fetch("/tz.php")
		if sapi == "fpm-fcgi" {
			t.Fatalf("/tz.php ran on FPM, want the embedded backend")
		}
		if got != fpm {
			t.Fatalf("request %d: embedded answered\n%s\nFPM\n%s", i+1, got, fpm)
		}
	}
}

// floatsParityScript turns floats into strings every way PHP does: they go
// through zend_strtod.c's dtoa, whose Bigint free list the embedded build
// keeps per thread (scripts/php-patches/0003).
const floatsParityScript = `<?php
header('Content-Type: text/plain');
$seed = (int) ($_GET['seed'] ?? 1);
mt_srand($seed);
$out = [];
foreach ([0.1, 1/3, 2/3, 1e22, 1e-7, -0.0, 5e-324, 1.7976931348623157e308, 123456789.987654321, 0.30000000000000004] as $f) {
    $out[] = [$f, (string) $f, var_export($f, true), sprintf('%.17g|%e|%.3f|%F', $f, $f, $f, $f),
        number_format($f, 4), json_encode($f), serialize($f), round($f, 3), (float) (string) $f === $f];
}
for ($i = 0; $i < 300; $i++) {
    $f = mt_rand() / mt_getrandmax() * 10 ** mt_rand(-30, 30);
    $out[] = [sprintf('%.17g', $f), number_format($f, 2), json_encode($f), (string) round($f, 5),
        (float) sprintf('%.17g', $f) === $f];
}
echo PHP_SAPI, "\n", md5(json_encode($out)), "\n", json_encode(array_slice($out, 0, 10));
`

// reportClient bounds each request of fetchSAPIReport.
var reportClient = &http.Client{Timeout: time.Minute}

// fetchSAPIReport GETs path, which answers PHP_SAPI on its first line and a
// report after it (tzParityScript, floatsParityScript). Safe to call from
// any goroutine: it returns errors instead of failing the test.
func fetchSAPIReport(s *Server, path string) (sapi, report string, err error) {
	resp, err := reportClient.Get(s.URL(path))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET %s: status %d, %v: %.300s", path, resp.StatusCode, err, body)
	}
	sapi, report, _ = strings.Cut(string(body), "\n")
	return sapi, report, nil
}

// Floats become the same strings on the embedded backend as under PHP-FPM,
// with several PHP threads converting at once (a broken per-thread free
// list would hand one thread's digits to another, or crash).
func TestEmbeddedFloatsMatchFPMConcurrently(t *testing.T) {
	t.Parallel()
	s := paritySiteThreads(t, "floats.php", floatsParityScript, fpmtest.Options{}, 4)
	fetch := func(path string) (string, string, error) { return fetchSAPIReport(s, path) }
	const seeds = 8
	want := make([]string, seeds)
	for i := range seeds {
		sapi, report, err := fetch(fmt.Sprintf("/fpm/floats.php?seed=%d", i))
		if err != nil || sapi != "fpm-fcgi" {
			t.Fatalf("FPM (SAPI %q): %v", sapi, err)
		}
		want[i] = report
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*seeds)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 * seeds {
				seed := (c + r) % seeds
				sapi, got, err := fetch(fmt.Sprintf("/floats.php?seed=%d", seed))
				switch {
				case err != nil:
					errs <- err
					return
				case sapi == "fpm-fcgi":
					errs <- fmt.Errorf("/floats.php ran on FPM, want the embedded backend")
					return
				case got != want[seed]:
					errs <- fmt.Errorf("seed %d: embedded answered\n%.600s\nFPM\n%.600s", seed, got, want[seed])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// cwdScript reports, relative to its own directory, the working directory
// it runs in, what relative paths reach, and the one its shutdown functions
// run in (FPM's own: php_execute_script changes back before them).
const cwdScript = `<?php
register_shutdown_function(function () {
    echo "shutdown: cwd is __DIR__ or its parent ", var_export(in_array(getcwd(), [__DIR__, dirname(__DIR__)], true), true), "\n";
});
echo PHP_SAPI, "\n";
echo "cwd is __DIR__ ", var_export(getcwd() === __DIR__, true), "\n";
echo "realpath('.') is __DIR__ ", var_export(realpath('.') === __DIR__, true), "\n";
echo "include 'inc.php': ", include 'inc.php', "\n";
echo "read 'data.txt': ", file_get_contents('data.txt'), "\n";
if (isset($_GET['chdir'])) {
    echo "chdir('..'): ", var_export(chdir('..') && getcwd() === dirname(__DIR__), true), "\n";
}
`

// A script runs in its own directory on the embedded backend as under
// PHP-FPM (relative includes and reads find its neighbours), through a
// symlinked directory too, and its shutdown functions do not; a script's
// chdir() does not outlive its request.
func TestEmbeddedWorkingDirectoryMatchesFPM(t *testing.T) {
	t.Parallel()
	// fe-php's build exports what the bridge needs to enter the directory
	// without PHP's stat()s (scripts/php-patches/0005); without it the
	// bridge lets PHP do it, and this test would check only PHP's way.
	if os.Getenv("FEPHP_TEST_LIBPHP") == "" {
		requireDynamicSymbol(t, "/usr/local/php-zts-embed/lib/libphp.so", "cwd_globals_offset")
	}
	s := paritySiteFiles(t, map[string]string{
		"app/cwd.php":  cwdScript,
		"app/inc.php":  "<?php return basename(__DIR__);",
		"app/data.txt": "data of app",
		"link":         "symlink:app",
	}, fpmtest.Options{}, 1)
	const want = "cwd is __DIR__ true\n" +
		"realpath('.') is __DIR__ true\n" +
		"include 'inc.php': app\n" +
		"read 'data.txt': data of app\n"
	// One PHP thread: each request runs on the thread the one before left,
	// the last ones after a chdir('..').
	for _, path := range []string{"/app/cwd.php", "/link/cwd.php", "/app/cwd.php?chdir=1", "/app/cwd.php", "/link/cwd.php?chdir=1", "/link/cwd.php"} {
		want := want
		if strings.HasSuffix(path, "?chdir=1") {
			want += "chdir('..'): true\n"
		}
		want += "shutdown: cwd is __DIR__ or its parent false\n"
		fpmSAPI, fpm, err := fetchSAPIReport(s, "/fpm"+path)
		if err != nil || fpmSAPI != "fpm-fcgi" {
			t.Fatalf("FPM (SAPI %q): %v", fpmSAPI, err)
		}
		sapi, got, err := fetchSAPIReport(s, path)
		if err != nil || sapi == "fpm-fcgi" {
			t.Fatalf("embedded (SAPI %q): %v", sapi, err)
		}
		if got != fpm {
			t.Errorf("GET %s: embedded answered\n%s\nFPM\n%s", path, got, fpm)
		}
		if fpm != want {
			t.Errorf("GET /fpm%s: FPM answered\n%s\nwant\n%s", path, fpm, want)
		}
	}
}

// requireDynamicSymbol fails the test unless the shared library at path
// exports name.
func requireDynamicSymbol(t *testing.T, path, name string) {
	t.Helper()
	if s, ok := elfSymbol(t, path, name, true); !ok || s.Section == elf.SHN_UNDEF {
		t.Fatalf("%s does not export %s: not fe-php's build of PHP (make php)", path, name)
	}
}
