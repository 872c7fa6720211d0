<?php
// Holds its PHP thread: leaves state/hold-<id> when it starts running,
// sleeps ?s= seconds, then answers "held <id> slept=<sleep()'s result>".
require __DIR__ . '/_state.inc';
$id = preg_replace('/[^a-z0-9-]/', '', $_GET['id'] ?? 'x');
file_put_contents(state_file("hold-$id"), 'running');
$r = sleep((int)($_GET['s'] ?? 2));
echo "held $id slept=$r";
