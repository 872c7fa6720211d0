<?php
// ?how=code: http_response_code(404); ?how=cgi: a CGI Status header;
// ?how=location: a Location header (302 by default).
switch ($_GET['how'] ?? '') {
case 'code':
    http_response_code(404);
    echo "not here";
    break;
case 'cgi':
    header('Status: 418 Teapot');
    echo "short and stout";
    break;
case 'location':
    header('Location: /x');
    break;
}
