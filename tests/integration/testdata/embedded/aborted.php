<?php
// Streams until the client goes away; connection_aborted() must notice.
require __DIR__ . '/_state.inc';
ignore_user_abort(true);
$marker = state_file('aborted');
file_put_contents($marker, 'started');
for ($i = 0; $i < 50; $i++) {
    echo str_repeat('x', 65536);
    flush();
    usleep(50000);
    if (connection_aborted()) {
        file_put_contents($marker, 'aborted');
        break;
    }
}
if (!connection_aborted()) {
    file_put_contents($marker, 'not aborted');
}
