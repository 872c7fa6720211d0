<?php
// error_log() goes to PHP's log channel; php://stderr to the process's fd 2.
error_log('hello-stderr');
file_put_contents('php://stderr', "hello-fd2\n");
echo 'ok';
