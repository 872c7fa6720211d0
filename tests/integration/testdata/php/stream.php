<?php
// Sends "first", flushes, then waits (at most 10 s) for the test to create
// the file named by ?go= before it writes the marker ?mark= and "second":
// the test creates ?go= only after "first" reached it, so "first" must have
// been streamed while the script was still running.
require __DIR__ . '/lib/dump.inc';
while (ob_get_level() > 0) {
    ob_end_flush();
}
header('Content-Type: text/plain');
echo "first\n";
flush();
$go = state($_GET['go']);
$deadline = microtime(true) + 10;
while (!file_exists($go) && microtime(true) < $deadline) {
    usleep(10000);
}
file_put_contents(state($_GET['mark']), 'done');
echo file_exists($go) ? "second\n" : "timed out waiting for the go file\n";
