<?php
// Sleeps ?ms= milliseconds; with ?mark=, first leaves that file in the state
// directory (so a test knows the request is running on FPM).
require __DIR__ . '/lib/dump.inc';
if (isset($_GET['mark'])) {
    file_put_contents(state($_GET['mark']), (string)getmypid());
}
usleep((int)($_GET['ms'] ?? 0) * 1000);
echo 'slept ' . getmypid();
