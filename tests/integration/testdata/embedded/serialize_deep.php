<?php
// serialize() recurses in C, one C frame per level (about 1 KiB of stack
// each): 10,000 levels overflow an 8 MiB (or 2 MiB) stack.
$depth = (int)($_GET['depth'] ?? 10000);
$a = [];
for ($i = 0; $i < $depth; $i++) {
    $a = [$a];
}
echo strlen(serialize($a));
