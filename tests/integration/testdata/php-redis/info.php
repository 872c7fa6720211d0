<?php
// TestRedisSessions: the session setup this PHP runs with.
header('Content-Type: application/json');
echo json_encode([
    'sapi' => PHP_SAPI,
    'redis_loaded' => extension_loaded('redis'),
    'redis_version' => phpversion('redis'),
    'save_handler' => ini_get('session.save_handler'),
    'save_path' => ini_get('session.save_path'),
    'serialize_handler' => ini_get('session.serialize_handler'),
    'name' => session_name(),
    'sid_length' => ini_get('session.sid_length'),
]);
