<?php
// Logs, writes 100 KB, flushes, logs again, writes the end.
error_log('first-message');
error_log('second-message');
echo str_repeat('a', 100000);
flush();
error_log('after-flush');
echo "end";
