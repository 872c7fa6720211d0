<?php
function f($n) { return $n ? f($n - 1) + 1 : 0; }
echo f((int)($_GET['n'] ?? 50000));
