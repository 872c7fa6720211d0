<?php
// Burns CPU for up to ?s= seconds of wall-clock time under
// max_execution_time ?limit=: the limit ends it first.
set_time_limit((int) ($_GET['limit'] ?? 1));
$end = microtime(true) + (float) ($_GET['s'] ?? 5);
$i = 0;
while (microtime(true) < $end) {
    $i++;
}
echo "busy done\n";
