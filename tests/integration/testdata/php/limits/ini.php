<?php
// The PHP settings a request sees, and whether a script may change them.
header('Content-Type: application/json');
$keys = ['upload_max_filesize', 'memory_limit', 'error_reporting', 'max_input_vars', 'session.gc_maxlifetime'];
$out = [];
foreach ($keys as $k) {
    $out[$k] = ini_get($k);
}
$out['ini_set_memory_limit'] = @ini_set('memory_limit', '99M') !== false;
$out['ini_set_gc_maxlifetime'] = @ini_set('session.gc_maxlifetime', '55') !== false;
echo json_encode($out);
