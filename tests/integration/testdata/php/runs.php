<?php
// Appends a line to state(?id=) each time it runs; then ?die=1 kills its
// own PHP-FPM child (a crash or OOM kill: FastCGI only), ?ms= sleeps, and
// ?flush=1 flushes "part" first.
require __DIR__ . '/lib/dump.inc';
file_put_contents(state($_GET['id'] ?? 'runs'), "run\n", FILE_APPEND | LOCK_EX);
if (!empty($_GET['flush'])) {
    echo "part";
    flush();
    usleep(100000);
}
if (!empty($_GET['die'])) {
    posix_kill(getmypid(), 9);
}
usleep((int)($_GET['ms'] ?? 0) * 1000);
echo "ran";
