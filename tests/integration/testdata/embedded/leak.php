<?php
// Every kind of state a script can keep: none of it may be seen by the
// next request (each request starts from a clean slate, as under FPM).
class Counter { public static int $n = 0; }
function counted(): int { static $n = 0; return ++$n; }
$GLOBALS['leak_global'] = ($GLOBALS['leak_global'] ?? 0) + 1;
Counter::$n++;
$seen = [
    'global' => $GLOBALS['leak_global'],
    'static_var' => counted(),
    'static_prop' => Counter::$n,
    'constant' => defined('LEAK_CONSTANT'),
    'function' => function_exists('leak_defined_function'),
    'ini' => ini_get('precision'),
    'env' => getenv('FE_PHP_LEAK_ENV'),
    // Not state, but set per thread context: right on fresh ones too.
    'sapi' => PHP_SAPI . ' ' . php_sapi_name(),
];
define('LEAK_CONSTANT', 1);
eval('function leak_defined_function() {}');
ini_set('precision', '3');
putenv('FE_PHP_LEAK_ENV=leaked');
header('Content-Type: application/json');
echo json_encode($seen);
