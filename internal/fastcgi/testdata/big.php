<?php
// Writes n bytes (?n=) of a repeating pattern, in 64 KiB pieces.
$n = (int)($_GET['n'] ?? 1048576);
$chunk = str_repeat('0123456789abcdef', 4096);
while ($n > 0) {
    $m = min($n, strlen($chunk));
    echo $m === strlen($chunk) ? $chunk : substr($chunk, 0, $m);
    $n -= $m;
}
