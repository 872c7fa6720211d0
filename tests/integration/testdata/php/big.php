<?php
// 10 MiB: 160 blocks of 64 KiB, block $i being "%07d\n" of $i repeated.
header('Content-Type: application/octet-stream');
for ($i = 0; $i < 160; $i++) {
    echo str_repeat(sprintf("%07d\n", $i), 8192);
}
