<?php
// $_SERVER through the input filter, as FPM registers it.
header('Content-Type: application/json');
echo json_encode([
    'filter' => filter_input(INPUT_SERVER, 'REMOTE_ADDR'),
    'server' => $_SERVER['REMOTE_ADDR'] ?? null,
    'user' => $_SERVER['PHP_AUTH_USER'] ?? null,
]);
