<?php
// The worker kills itself (SIGKILL) after it read the request, before any
// output: FPM's master replaces it, the client sees its connection closed.
// ?body=1: reads the request body first.
if (!empty($_GET['body'])) {
    file_get_contents('php://input');
}
posix_kill(getmypid(), 9);
echo "not reached";
