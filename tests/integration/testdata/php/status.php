<?php
if (isset($_GET['code'])) {
    http_response_code((int)$_GET['code']);
    echo 'code ' . (int)$_GET['code'];
}
if (isset($_GET['teapot'])) {
    header("Status: 418 I'm a teapot");
    echo 'teapot';
}
