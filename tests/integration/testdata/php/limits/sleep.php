<?php
// Sleeps ?s= seconds inside a function, under max_execution_time ?limit=
// (CPU time on both backends), then says so. A shutdown function logs.
function wait_for(int $s): void
{
    sleep($s);
}
register_shutdown_function(function () {
    error_log('limits: shutdown function ran');
});
if (isset($_GET['limit'])) {
    set_time_limit((int) $_GET['limit']);
}
wait_for((int) ($_GET['s'] ?? 1));
echo 'slept ', (int) ($_GET['s'] ?? 1), "\n";
