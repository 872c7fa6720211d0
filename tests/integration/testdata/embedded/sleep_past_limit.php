<?php
// Sleeps 2 s under max_execution_time = 1. The embedded backend's ZTS
// PHP times scripts by the wall clock (per-thread timers): a fatal error.
// PHP-FPM's NTS PHP counts CPU time (ITIMER_PROF): the sleep is free.
echo "before the sleep\n";
sleep(2);
echo "after the sleep\n";
