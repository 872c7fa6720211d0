<?php
// Answers "early", finishes the request with fastcgi_finish_request(), then
// writes more output 200 ms later (?ms= to change): PHP-FPM sends it as
// FCGI_STDOUT records of this request's id after FCGI_END_REQUEST
// (php-src issue #18275).
echo "early";
fastcgi_finish_request();
usleep((int)($_GET['ms'] ?? 200) * 1000);
echo "LATE-SECRET";
flush();
