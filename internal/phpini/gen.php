<?php
// Writes the directives of this PHP (the ZTS build, with the extensions its
// conf.d enables and OPcache) as JSON: name -> [access, production value].
// Run by `go generate` (see phpini.go) with the build's CLI; the
// integration tests check that the committed directives.json matches it.
//
// The CLI forces a few values of its own over php.ini (max_execution_time=0,
// output_buffering=0, ...): a directive the loaded ini files set takes the
// files' value, as a web SAPI sees it.
$files = array_filter(array_merge([php_ini_loaded_file()], array_map('trim', explode(',', (string) php_ini_scanned_files()))));
$fromFiles = [];
foreach ($files as $f) {
    $fromFiles = array_merge($fromFiles, parse_ini_file($f, false, INI_SCANNER_NORMAL) ?: []);
}
// What fe-php's embedded PHP and Debian's FPM see that this CLI does not:
// html_errors is forced off by the CLI; opcache.jit=off is Debian's
// opcache.ini (fe-php sets it too); session.upload_progress.enabled is off
// in Debian's current php8.2 (fe-php's web defaults follow it).
$web = ['html_errors' => '1', 'opcache.jit' => '', 'session.upload_progress.enabled' => '0'];
$out = [];
foreach (ini_get_all(null, true) as $name => $d) {
    $value = array_key_exists($name, $fromFiles) ? (string) $fromFiles[$name] : ($d['global_value'] ?? '');
    if (array_key_exists($name, $web)) {
        $value = $web[$name];
    }
    $out[$name] = [$d['access'], $value];
}
ksort($out);
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
