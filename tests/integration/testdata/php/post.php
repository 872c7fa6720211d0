<?php
require __DIR__ . '/lib/dump.inc';
dump('post.php');
