<?php
setcookie('first', 'one');
setcookie('second', 'two', ['path' => '/', 'httponly' => true]);
header('X-Multi: a');
header('X-Multi: b', false);
echo "cookies set";
