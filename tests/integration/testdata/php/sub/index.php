<?php
require dirname(__DIR__) . '/lib/dump.inc';
dump('sub/index.php');
