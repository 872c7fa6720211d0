<?php
// Writes 1 MiB before it reads its input, then prints the input's length and SHA-256.
echo str_repeat('x', 1048576);
flush();
$body = file_get_contents('php://input');
echo "\n", strlen($body), ' ', hash('sha256', $body);
