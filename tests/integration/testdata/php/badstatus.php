<?php
// An invalid status from the script: ?code= (default 1000); ?flush=1
// flushes output after setting it; ?session=1 holds the session's lock
// while it does.
require __DIR__ . '/lib/dump.inc';
if (!empty($_GET['session'])) {
    session_save_path(dirname(state('x')));
    session_start();
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
}
http_response_code((int)($_GET['code'] ?? 1000));
echo "body";
if (!empty($_GET['flush'])) {
    flush();
}
echo " more";
