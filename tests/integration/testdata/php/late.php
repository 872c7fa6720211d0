<?php
// fastcgi_finish_request(), then more output after ?ms= milliseconds.
// Under PHP-FPM those bytes still travel on the FastCGI connection after
// the request ended (php-src #18275); they must never reach the next
// request on that connection. They look like a response head, to show
// it if they do.
header('X-Who: late-owner');
echo "first-user";
fastcgi_finish_request();
usleep((int)($_GET['ms'] ?? 50) * 1000);
echo "Set-Cookie: stolen=1\r\n\r\nLATE-SECRET";
flush();
