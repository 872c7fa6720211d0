<?php
// What kind of PHP this is: OPcache, SAPI name, thread safety.
header('Content-Type: application/json');
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo json_encode([
    'opcache_loaded' => extension_loaded('Zend OPcache'),
    'opcache_enabled' => is_array($status) ? $status['opcache_enabled'] : false,
    'cached' => function_exists('opcache_is_script_cached') ? opcache_is_script_cached(__FILE__) : false,
    'php_sapi_name' => php_sapi_name(),
    'PHP_SAPI' => PHP_SAPI,
    'PHP_ZTS' => PHP_ZTS,
    'PHP_VERSION' => PHP_VERSION,
]);
