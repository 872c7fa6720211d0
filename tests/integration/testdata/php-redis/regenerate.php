<?php
// TestRedisSessions: a new session id for the same data (as after a login);
// the old id's data is deleted.
session_start();
$old = session_id();
$ok = session_regenerate_id(true);
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'old' => $old, 'id' => session_id(), 'ok' => $ok, 'session' => (object)$_SESSION]);
