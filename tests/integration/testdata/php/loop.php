<?php
// Runs until killed: no time limit. ?mark= leaves a file first.
require __DIR__ . '/lib/dump.inc';
set_time_limit(0);
if (isset($_GET['mark'])) {
    file_put_contents(state($_GET['mark']), 'running');
}
while (true) {
    usleep(10000);
}
