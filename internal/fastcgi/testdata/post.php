<?php
// Reads the request body from php://input; prints its length and SHA-256.
$in = fopen('php://input', 'rb');
$h = hash_init('sha256');
$n = 0;
while (!feof($in)) {
    $chunk = fread($in, 65536);
    if ($chunk === false) break;
    $n += strlen($chunk);
    hash_update($h, $chunk);
}
echo $n, ' ', hash_final($h);
