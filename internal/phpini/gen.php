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
$out = [];
foreach (ini_get_all(null, true) as $name => $d) {
    $value = array_key_exists($name, $fromFiles) ? (string) $fromFiles[$name] : ($d['global_value'] ?? '');
    $out[$name] = [$d['access'], $value];
}
ksort($out);
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
