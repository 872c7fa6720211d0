<?php
echo "before the allocation\n";
$s = str_repeat('m', 64 << 20);
echo strlen($s), "\n";
