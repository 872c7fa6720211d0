<?php
// Sleeps ?ms= milliseconds (default 100) before any output.
usleep((int)($_GET['ms'] ?? 100) * 1000);
echo "slept ", getmypid();
