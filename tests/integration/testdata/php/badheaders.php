<?php
// Response heads PHP should not send (?mode=).
switch ($_GET['mode'] ?? '') {
    case 'dupcl':
        header('Content-Length: 4');
        header('Content-Length: 5', false);
        echo 'abcd';
        break;
    case 'junkcl':
        header('Content-Length: 4x');
        echo 'abcd';
        break;
    case 'nocolon':
        header('X-Fine: yes');
        header('garbage-line-without-colon');
        echo 'ok';
        break;
    case 'xaccel':
        header('X-Accel-Buffering: no');
        echo 'streamed';
        break;
}
