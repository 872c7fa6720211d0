<?php
// ?lines=N&ms=M: writes N lines, flushing and sleeping M ms after each.
$lines = (int)($_GET['lines'] ?? 1);
$ms = (int)($_GET['ms'] ?? 0);
for ($i = 0; $i < $lines; $i++) {
    echo "line $i ", getmypid(), "\n";
    flush();
    if ($ms > 0) usleep($ms * 1000);
}
