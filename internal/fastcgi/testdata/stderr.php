<?php
// Writes to the error channels PHP has under FPM, each with a marker.
// (FPM defines no STDERR constant: that is the CLI's.)
error_log('marker-error_log');
$e = fopen('php://stderr', 'w');
fwrite($e, "marker-php-stderr\n");
fclose($e);
trigger_error('marker-trigger_error', E_USER_WARNING);
echo defined('STDERR') ? "STDERR defined\n" : "no STDERR constant\n";
echo "done";
