<?php
// The session's counter (save path in the state directory).
require __DIR__ . '/lib/dump.inc';
session_save_path(dirname(state('x')));
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo 'n=' . $_SESSION['n'];
