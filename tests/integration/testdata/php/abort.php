<?php
// 50 rounds of 64 KiB, each flushed, 100 ms apart; after each round the
// round number goes to the counter file ?counter=. A client that leaves
// must stop the script (ignore_user_abort is off): the counter stops.
require __DIR__ . '/lib/dump.inc';
while (ob_get_level() > 0) {
    ob_end_flush();
}
$counter = state($_GET['counter']);
for ($i = 1; $i <= 50; $i++) {
    echo str_repeat('x', 65536);
    flush();
    usleep(100000);
    file_put_contents($counter, (string)$i);
}
