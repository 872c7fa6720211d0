<?php
// TestRedisSessions: starts (or resumes) the session and stores ?v= in it.
session_start();
$_SESSION['value'] = $_GET['v'] ?? '';
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'id' => session_id(), 'session' => (object)$_SESSION]);
