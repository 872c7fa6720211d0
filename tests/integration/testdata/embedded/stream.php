<?php
// Sends a first chunk and flushes it (ob_flush() for output_buffering,
// 4096 as in php.ini-production, then flush(): the idiom under FPM too),
// then waits until the test has seen it (state/stream-seen appears)
// before the rest: a first chunk that did not reach the client before
// the end of the script makes the test fail.
require __DIR__ . '/_state.inc';
header('Content-Type: text/plain');
echo "first chunk\n";
ob_flush();
flush();
$seen = state_file('stream-seen');
for ($i = 0; $i < 500 && !file_exists($seen); $i++) {
    usleep(10000);
}
echo file_exists($seen) ? "rest after the client saw the first chunk\n" : "timed out waiting\n";
