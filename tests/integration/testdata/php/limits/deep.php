<?php
// A deep stack of long names for the slowlog's backtrace: a class and
// methods with 250-character names, recursing ?d= levels, then sleeping
// ?s= seconds.
$cls = 'C' . str_repeat('x', 249);
$fn = 'f' . str_repeat('y', 249);
eval("class $cls { static function $fn(int \$d, int \$s): void { if (\$d > 0) { self::$fn(\$d - 1, \$s); return; } sleep(\$s); } }");
$cls::$fn((int) ($_GET['d'] ?? 40), (int) ($_GET['s'] ?? 2));
echo "deep done\n";
