<?php
// Reads from ?port= on 127.0.0.1, which never answers, with a socket
// timeout of ?timeout= seconds.
ini_set('default_socket_timeout', $_GET['timeout'] ?? '3');
$s = stream_socket_client('tcp://127.0.0.1:' . (int) $_GET['port'], $errno, $errstr, 5);
if (!$s) {
    echo "connect failed: $errstr\n";
    exit;
}
$got = fread($s, 10);
echo 'read returned ', var_export($got, true), "\n";
