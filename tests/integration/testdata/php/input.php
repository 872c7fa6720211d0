<?php
$in = file_get_contents('php://input');
$json = null;
if (str_starts_with($_SERVER['CONTENT_TYPE'] ?? '', 'application/json')) {
    $json = json_decode($in, true);
}
header('Content-Type: application/json');
echo json_encode([
    'len' => strlen($in),
    'md5' => md5($in),
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
    'method' => $_SERVER['REQUEST_METHOD'],
    'json' => $json,
], JSON_UNESCAPED_SLASHES);
