<?php
setcookie('first', 'one');
setcookie('second', 'two words', ['path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
require __DIR__ . '/lib/dump.inc';
dump('cookies.php');
