<?php
// TestRedisSessions: a logout, as PHP's manual writes it: the session's
// data is destroyed and the browser told to drop the cookie.
session_start();
$id = session_id();
$_SESSION = [];
$p = session_get_cookie_params();
setcookie(session_name(), '', time() - 42000, $p['path'], $p['domain'], $p['secure'], $p['httponly']);
$ok = session_destroy();
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'id' => $id, 'ok' => $ok, 'session' => (object)$_SESSION]);
