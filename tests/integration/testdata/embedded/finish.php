<?php
// fastcgi_finish_request(): the client gets the response now (?size=
// bytes of it: "done" by default; with ?flush=1 the output is flushed
// first, so the response is already streaming, chunked); state/<marker>
// is written a second later; output after the call is discarded.
require __DIR__ . '/_state.inc';
$size = (int)($_GET['size'] ?? 0);
echo $size > 0 ? str_repeat('s', $size) : "done";
if (!empty($_GET['flush'])) {
    flush();
}
fastcgi_finish_request();
sleep(1);
file_put_contents(state_file($_GET['marker'] ?? 'finished'), 'after');
echo "discarded";
