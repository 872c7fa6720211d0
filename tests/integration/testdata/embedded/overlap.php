<?php
// Records when it started and ended around a 400 ms sleep.
header('Content-Type: application/json');
$start = microtime(true);
usleep(400000);
$end = microtime(true);
echo json_encode(['start' => $start, 'end' => $end]);
