<?php
// TestRedisSessions: counts the requests of a session, and which PHP served each.
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['trail'][] = PHP_SAPI;
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'id' => session_id(), 'session' => (object)$_SESSION]);
