<?php
// TestRedisSessions: reads the session without writing it back.
session_start(['read_and_close' => true]);
header('Content-Type: application/json');
echo json_encode(['sapi' => PHP_SAPI, 'id' => session_id(), 'session' => (object)$_SESSION]);
