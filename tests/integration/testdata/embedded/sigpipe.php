<?php
// Writes 100 x 64 KiB to a peer that has closed the connection: the
// writes fail (EPIPE) and the process must not get killed by SIGPIPE.
$port = (int)$_GET['port'];
$s = stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 5);
if (!$s) {
    http_response_code(502);
    echo "connect failed: $errstr";
    exit;
}
usleep(100000); // the peer closes meanwhile
$chunk = str_repeat('p', 65536);
$ok = $failed = 0;
for ($i = 0; $i < 100; $i++) {
    $n = @fwrite($s, $chunk);
    if ($n === false || $n === 0) {
        $failed++;
    } else {
        $ok++;
    }
}
fclose($s);
echo "written=$ok failed=$failed";
