<?php
// The front controller: runs for every path that names no file.
require __DIR__ . '/lib/dump.inc';
dump('index.php');
