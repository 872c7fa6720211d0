//go:build fephp_bridge

package integration

// setlocale() on the embedded backend behaves as under PHP-FPM: the same
// answers, a request that changes its locale changes no other request's
// (FPM's requests each have a process; the embedded build gives each PHP
// thread a locale of its own: scripts/php-patches/0004), and the next
// request starts on the process's locale again.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fe-php/fe-php/internal/testutil/fpmtest"
)

// testLocales must be installed (scripts/deps.sh generates them): without
// them setlocale() fails on both backends alike and the tests prove nothing.
var testLocales = []string{"de_DE.UTF-8", "fr_FR.UTF-8", "en_US.UTF-8"}

// localeScript applies ops, a JSON list of [category, locale] (locale null
// to query, a list for setlocale's fallbacks), and after each reports what
// the locale changes: setlocale's answer, localeconv(), printf's floats,
// nl_langinfo, collation.
const localeScript = `<?php
header('Content-Type: text/plain');
$probe = function () {
    $words = ['zebra', 'Äpfel', 'apfel', 'Zoo', 'éclair', 'eclair'];
    sort($words, SORT_LOCALE_STRING);
    return [sprintf('%.2f|%e|%5.1F|%g', 1234.5, 0.000123, 2.25, 0.5), number_format(1234.5, 2), (string) 1.5,
        localeconv(), nl_langinfo(RADIXCHAR), nl_langinfo(MON_1), nl_langinfo(DAY_1), nl_langinfo(CODESET),
        strcoll('ä', 'z') <=> 0, $words, ctype_alpha("\xe4")];
};
$out = ['start' => setlocale(LC_ALL, 0), 'start_probe' => $probe()];
foreach (json_decode($_GET['ops'] ?? '[]', true) as [$cat, $loc]) {
    $out['ops'][] = [$cat, $loc, setlocale(constant($cat), $loc ?? '0'), $probe()];
}
echo PHP_SAPI, "\n", json_encode($out, JSON_PRETTY_PRINT);
`

// requireLocales fails the test unless the system has testLocales.
func requireLocales(t *testing.T) {
	t.Helper()
	out, err := exec.Command("locale", "-a").Output()
	if err != nil {
		t.Fatalf("locale -a: %v", err)
	}
	have := strings.Fields(string(out))
	for _, l := range testLocales {
		// locale -a spells them de_DE.utf8.
		if !slices.Contains(have, strings.Replace(l, "UTF-8", "utf8", 1)) {
			t.Fatalf("the locale %s is not installed (make deps generates it); locale -a lists %q", l, have)
		}
	}
}

// The embedded backend answers each sequence of setlocale() calls as PHP-FPM
// does, byte for byte, on the first request and on the next ones of the
// same PHP thread (each starts on the process's locale again).
func TestEmbeddedSetlocaleMatchesFPM(t *testing.T) {
	t.Parallel()
	requireLocales(t)
	s := paritySite(t, "locale.php", localeScript, fpmtest.Options{})
	sequences := [][][2]any{
		{{"LC_ALL", "de_DE.UTF-8"}, {"LC_ALL", nil}, {"LC_NUMERIC", "fr_FR.UTF-8"}, {"LC_ALL", nil}, {"LC_NUMERIC", nil}},
		{{"LC_ALL", "xx_XX.UTF-8"}, {"LC_ALL", []string{"xx_XX", "en_US.UTF-8", "de_DE.UTF-8"}}, {"LC_MONETARY", "de_DE.UTF-8"}, {"LC_ALL", "0"}},
		{{"LC_ALL", "LC_CTYPE=de_DE.UTF-8;LC_NUMERIC=fr_FR.UTF-8;LC_TIME=en_US.UTF-8;LC_COLLATE=de_DE.UTF-8;LC_MONETARY=C;LC_MESSAGES=C;LC_PAPER=C;LC_NAME=C;LC_ADDRESS=C;LC_TELEPHONE=C;LC_MEASUREMENT=C;LC_IDENTIFICATION=C"}},
		{{"LC_CTYPE", "de_DE.UTF-8"}, {"LC_TIME", "fr_FR.UTF-8"}, {"LC_ALL", "C"}, {"LC_ALL", "POSIX"}, {"LC_CTYPE", "C.UTF-8"}, {"LC_ALL", nil}},
	}
	for i, seq := range sequences {
		ops, _ := json.Marshal(seq)
		query := "?ops=" + url.QueryEscape(string(ops))
		sapi, fpm, err := fetchSAPIReport(s, "/fpm/locale.php"+query)
		if err != nil || sapi != "fpm-fcgi" {
			t.Fatalf("FPM (SAPI %q): %v", sapi, err)
		}
		if i == 0 && !strings.Contains(fpm, `"de_DE.UTF-8"`) {
			t.Fatalf("FPM could not set de_DE.UTF-8: %s", fpm)
		}
		for r := range 2 {
			sapi, got, err := fetchSAPIReport(s, "/locale.php"+query)
			if err != nil || sapi == "fpm-fcgi" {
				t.Fatalf("embedded (SAPI %q): %v", sapi, err)
			}
			if got != fpm {
				t.Fatalf("sequence %s, request %d: embedded answered\n%s\nFPM\n%s", ops, r+1, got, fpm)
			}
		}
	}
}

// lockstepLocaleScript: the request "set" switches to de_DE.UTF-8 and waits
// for the request "look", on another PHP thread, to print a float meanwhile
// and finish; then it prints one too. Each must print in its own locale.
const lockstepLocaleScript = `<?php
header('Content-Type: text/plain');
$dir = $_GET['dir'];
$wait = function ($file) {
    for ($i = 0; $i < 1000 && !file_exists($file); $i++) {
        usleep(10000);
    }
    return file_exists($file);
};
if ($_GET['role'] === 'set') {
    $r = setlocale(LC_ALL, 'de_DE.UTF-8');
    touch("$dir/set");
    $seen = $wait("$dir/looked");
    echo PHP_SAPI, "\n", json_encode([$r, $seen, sprintf('%.1f', 1.5), localeconv()['decimal_point'], setlocale(LC_ALL, 0)]);
} else {
    $seen = $wait("$dir/set");
    echo PHP_SAPI, "\n", json_encode([$seen, sprintf('%.1f', 1.5), localeconv()['decimal_point'], setlocale(LC_ALL, 0)]);
    touch("$dir/looked");
}
`

// One request's setlocale() does not reach another request running at the
// same time on another PHP thread, as it cannot under PHP-FPM (the
// process-wide C locale would: the other request would print "1,5").
func TestEmbeddedSetlocaleStaysInItsRequest(t *testing.T) {
	t.Parallel()
	requireLocales(t)
	s := paritySiteThreads(t, "lockstep.php", lockstepLocaleScript, fpmtest.Options{}, 2)
	for round := range 3 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		roles := []string{"set", "look"}
		answers := make([]string, len(roles)) // each goroutine writes its own
		for i, role := range roles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sapi, got, err := fetchSAPIReport(s, fmt.Sprintf("/lockstep.php?role=%s&dir=%s", role, url.QueryEscape(dir)))
				switch {
				case err != nil:
					t.Error(err)
				case sapi == "fpm-fcgi":
					t.Errorf("/lockstep.php ran on FPM, want the embedded backend")
				}
				answers[i] = got
			}()
		}
		wg.Wait()
		set, look := answers[0], answers[1]
		if want := `["de_DE.UTF-8",true,"1,5",",","de_DE.UTF-8"]`; set != want {
			t.Errorf("round %d: the request that set de_DE.UTF-8 answered %s, want %s", round, set, want)
		}
		if !strings.HasPrefix(look, `[true,"1.5",".","LC_CTYPE=C.UTF-8;LC_NUMERIC=C;`) {
			t.Errorf("round %d: the other request, while de_DE.UTF-8 was set beside it, answered %s; want its own locale (1.5, \".\", LC_CTYPE=C.UTF-8;LC_NUMERIC=C;...)", round, look)
		}
	}
}

// leakLocaleScript switches locales many times in one request and answers
// how much its process's resident memory grew meanwhile, in KiB.
const leakLocaleScript = `<?php
header('Content-Type: text/plain');
$rss = fn() => (int) preg_replace('/.*VmRSS:\s+(\d+).*/s', '$1', file_get_contents('/proc/self/status'));
$round = function () {
    setlocale(LC_ALL, 'C');
    setlocale(LC_ALL, 'de_DE.UTF-8');
    setlocale(LC_NUMERIC, 'fr_FR.UTF-8');
    setlocale(LC_ALL, 0);
    setlocale(LC_ALL, 'xx_XX');
};
for ($i = 0; $i < 1000; $i++) $round();
$before = $rss();
for ($i = 0; $i < 20000; $i++) $round();
echo PHP_SAPI, "\n", $rss() - $before;
`

// Locales switched a hundred thousand times in a request cost no memory
// that stays: each switch frees the locale it replaces (glibc's
// newlocale() keeps a base it was given when it answers "C" with its own
// C locale, 240 bytes a call, 4.8 MB here).
func TestEmbeddedSetlocaleDoesNotLeak(t *testing.T) {
	t.Parallel()
	requireLocales(t)
	s := paritySite(t, "leak.php", leakLocaleScript, fpmtest.Options{})
	sapi, grew, err := fetchSAPIReport(s, "/leak.php")
	if err != nil || sapi == "fpm-fcgi" {
		t.Fatalf("embedded (SAPI %q): %v", sapi, err)
	}
	kib, err := strconv.Atoi(grew)
	if err != nil {
		t.Fatalf("/leak.php answered %q, want the KiB its process grew", grew)
	}
	if kib > 2048 {
		t.Errorf("100,000 locale switches in one request grew the process by %d KiB, want under 2 MiB", kib)
	}
}
